import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';

/*
 * Credentials the server must use again, not just recognise (webhook signing secrets, Slack
 * URLs), stored encrypted in the tenant's schema: AES-256-GCM under a key derived from the
 * installation's TENANT_DB_SECRET with a label of its own (the tenant archive's HMAC key is
 * another label of the same secret). Each value is bound to where it belongs (tenant, kind,
 * row) as additional authenticated data, so a ciphertext copied to another row or tenant does
 * not decrypt. Changing TENANT_DB_SECRET makes the stored values unreadable: endpoints then
 * need a new secret (rotateWebhookSecret) and Slack its URL again.
 */

const FORMAT = 'v1';
const IV_BYTES = 12;
const TAG_BYTES = 16;

export class CredentialBox {
  private readonly key: Buffer;

  constructor(installationSecret: string) {
    this.key = createHmac('sha256', installationSecret).update('fleet-graphql outbound credentials v1').digest();
  }

  /** `v1.<iv>.<tag>.<ciphertext>`, base64url parts. */
  seal(plaintext: string, boundTo: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    cipher.setAAD(Buffer.from(boundTo, 'utf8'));
    const sealed = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return [FORMAT, iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), sealed.toString('base64url')].join('.');
  }

  /** Throws when the value was altered, sealed for another place, or under another secret. */
  open(stored: string, boundTo: string): string {
    const [format, iv, tag, sealed] = stored.split('.');
    if (format !== FORMAT || !iv || !tag || sealed === undefined) throw new Error('not a sealed credential');
    const decipher = createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'base64url'), { authTagLength: TAG_BYTES });
    decipher.setAAD(Buffer.from(boundTo, 'utf8'));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([decipher.update(Buffer.from(sealed, 'base64url')), decipher.final()]).toString('utf8');
  }
}
