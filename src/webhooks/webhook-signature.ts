import { createHmac, randomBytes } from 'node:crypto';
import type { DomainEvent } from '../events/domain-event';
import type { EventTenant } from '../notifications/channel';

/*
 * What a partner receives and how it knows the server sent it. The signature covers the
 * timestamp and the exact body bytes, so neither can be changed or replayed later without the
 * receiver noticing (it refuses old timestamps: the README's "Verifying webhook signatures").
 */

export const WEBHOOK_ID_HEADER = 'Fleet-Webhook-Id';
export const WEBHOOK_TIMESTAMP_HEADER = 'Fleet-Webhook-Timestamp';
export const WEBHOOK_SIGNATURE_HEADER = 'Fleet-Webhook-Signature';

/** 32 random bytes, shown once: `whsec_<base64url>`. The whole string is the HMAC key. */
export function newWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString('base64url')}`;
}

/** The JSON body of one delivery. */
export function webhookBody(event: DomainEvent, tenant: Pick<EventTenant, 'slug'>): string {
  return JSON.stringify({
    id: event.id,
    type: event.type,
    occurredAt: event.occurredAt.toISOString(),
    tenant: { slug: tenant.slug },
    subject: event.subject,
    data: event.data,
  });
}

/** `v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`, one per secret, space-separated. */
export function webhookSignature(secrets: readonly string[], timestamp: number, body: string): string {
  return secrets.map((secret) => `v1=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`).join(' ');
}

export function webhookHeaders(eventId: string, secrets: readonly string[], timestamp: number, body: string): Record<string, string> {
  return {
    [WEBHOOK_ID_HEADER]: eventId,
    [WEBHOOK_TIMESTAMP_HEADER]: String(timestamp),
    [WEBHOOK_SIGNATURE_HEADER]: webhookSignature(secrets, timestamp, body),
  };
}
