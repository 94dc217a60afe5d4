import { createHash, randomBytes } from 'node:crypto';

/*
 * One-time bearer secrets (refresh tokens, invitation codes): 256 random bits behind a prefix
 * that says what the secret is, stored only as a sha256 hash. A fast hash is enough here, unlike
 * for passwords: the secrets are random, so there is nothing to guess from a leaked hash.
 */

export const newSecret = (prefix: string): string => `${prefix}${randomBytes(32).toString('base64url')}`;

export const hashSecret = (secret: string): string => createHash('sha256').update(secret).digest('hex');
