import type { DomainEvent } from '../events/domain-event';
import type { TenantLease } from '../tenancy/tenant-client-pool';

/*
 * Every way an event reaches someone (in-app, email, Slack, partner webhooks) is a channel behind
 * this one interface. The delivery worker (src/notifications/delivery-worker.ts) decides, per
 * event, which channels and targets get a delivery (tenant routing and members' preferences),
 * keeps one NotificationDelivery row per (event, channel, target) in the tenant's schema, and
 * calls `deliver` for each with retries, backoff and a dead-letter state; a channel only sends.
 */

export type ChannelKind = 'IN_APP' | 'EMAIL' | 'SLACK' | 'WEBHOOK';

/** The tenant an event belongs to, as a channel may show it. */
export interface EventTenant {
  id: string;
  slug: string;
  name: string;
}

export interface DeliveryContext {
  tenant: EventTenant;
  /** The tenant's data, through its own role: `db` (Prisma) and `sql` (reads). */
  tenantData: Pick<TenantLease, 'db' | 'sql'>;
  /** The delivery's attempt, 1 for the first. */
  attempt: number;
  signal: AbortSignal;
}

/** A failed delivery; `retryable: false` dead-letters it at once (a 4xx from a webhook, a bad address). */
export class DeliveryError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean = true,
  ) {
    super(message);
  }
}

export interface NotificationChannel {
  readonly kind: ChannelKind;
  /**
   * Who gets this event on this channel (webhook endpoint ids, user ids, a Slack URL's id), given
   * the users the routing and preferences let through (`recipients`, for per-user channels).
   */
  targets(event: DomainEvent, recipients: readonly string[], context: Omit<DeliveryContext, 'attempt' | 'signal'>): Promise<string[]>;
  /** Sends one delivery; throws DeliveryError (or anything, taken as retryable) when it did not arrive. */
  deliver(event: DomainEvent, target: string, context: DeliveryContext): Promise<void>;
}
