import type { Logger } from '../observability/logger';
import { isUuid } from '../database/uuid';
import type { DomainEvent } from '../events/domain-event';
import { Prisma, type WebhookEndpoint } from '../generated/prisma/tenant/client';
import { DeliveryError, type DeliveryContext, type NotificationChannel } from '../notifications/channel';
import { failureOfError, failureOfResponse, type CallFailure } from '../outbound/call-outcome';
import type { CredentialBox } from '../outbound/credential-box';
import type { OutboundClient, OutboundResponse } from '../outbound/outbound-client';
import { endpointSecretBinding } from './webhook-endpoints';
import { webhookBody, webhookHeaders } from './webhook-signature';

/*
 * Partner webhooks as a notification channel: one target per enabled endpoint subscribed to
 * the event's type, one signed POST per delivery (the worker retries what is retryable).
 * Each endpoint keeps its run of failures: a success resets it, and at the threshold
 * (WEBHOOK_DISABLE_AFTER_FAILURES) the endpoint is disabled with the reason shown to admins,
 * so a receiver gone for good stops costing retries. Deliveries for an endpoint that is
 * disabled or deleted meanwhile fail without retry.
 */

const UNREADABLE_SECRET: CallFailure = {
  summary: 'signing secret unreadable',
  detail: 'signing secret unreadable (TENANT_DB_SECRET changed?): rotate the secret',
  retryable: false,
};

export interface WebhookChannelOptions {
  outbound: OutboundClient;
  box: CredentialBox;
  /** config.webhooks.disableAfterFailures */
  disableAfterFailures: number;
  logger: Logger;
  /** Tests move time (signature timestamps, grace periods). */
  now?: () => Date;
}

export class WebhookChannel implements NotificationChannel {
  readonly kind = 'WEBHOOK' as const;
  private readonly now: () => Date;

  constructor(private readonly options: WebhookChannelOptions) {
    this.now = options.now ?? (() => new Date());
  }

  async targets(event: DomainEvent, _recipients: readonly string[], context: Pick<DeliveryContext, 'tenantData'>): Promise<string[]> {
    const rows = await context.tenantData.sql.rows<{ id: string }>(
      Prisma.sql`SELECT "id" FROM "WebhookEndpoint" WHERE "enabled" AND ${event.type} = ANY("eventTypes") ORDER BY "createdAt", "id"`,
    );
    return rows.map((row) => row.id);
  }

  async deliver(event: DomainEvent, target: string, context: DeliveryContext): Promise<void> {
    const [endpoint] = isUuid(target)
      ? await context.tenantData.sql.rows<WebhookEndpoint>(Prisma.sql`SELECT * FROM "WebhookEndpoint" WHERE "id" = ${target}::uuid`)
      : [];
    if (!endpoint) throw new DeliveryError('webhook endpoint deleted', false);
    if (!endpoint.enabled) throw new DeliveryError(`webhook endpoint disabled${endpoint.disabledReason ? ` (${endpoint.disabledReason})` : ''}`, false);
    if (!endpoint.eventTypes.includes(event.type)) throw new DeliveryError(`webhook endpoint no longer subscribed to ${event.type}`, false);

    const now = this.now();
    const secrets = this.signingSecrets(endpoint, context.tenant.id, now);
    // Shown on the endpoint (lastError, then disabledReason), where its admins look.
    if (!secrets) return this.failed(endpoint, UNREADABLE_SECRET, context);
    const body = webhookBody(event, context.tenant);
    const headers = webhookHeaders(event.id, secrets, Math.floor(now.getTime() / 1000), body);

    let response: OutboundResponse;
    try {
      response = await this.options.outbound.post(endpoint.url, body, headers, { signal: context.signal });
    } catch (error) {
      const failure = failureOfError(error);
      // Stopping (the worker's shutdown) says nothing about the endpoint.
      if (context.signal.aborted) throw new DeliveryError(failure.detail, true);
      return this.failed(endpoint, failure, context);
    }
    const failure = failureOfResponse(response, secrets);
    if (failure) return this.failed(endpoint, failure, context);
    await context.tenantData.db.$executeRaw`
      UPDATE "WebhookEndpoint" SET "consecutiveFailures" = 0, "lastSuccessAt" = now(), "updatedAt" = now() WHERE "id" = ${endpoint.id}::uuid`;
  }

  /** The secrets that sign now: the current one, and the previous one during its grace period. */
  private signingSecrets(endpoint: WebhookEndpoint, tenantId: string, now: Date): string[] | null {
    const binding = endpointSecretBinding(tenantId, endpoint.id);
    const secrets: string[] = [];
    try {
      secrets.push(this.options.box.open(endpoint.secretCiphertext, binding));
      if (endpoint.previousSecretCiphertext && endpoint.previousSecretExpiresAt && endpoint.previousSecretExpiresAt > now) {
        secrets.push(this.options.box.open(endpoint.previousSecretCiphertext, binding));
      }
    } catch {
      return null;
    }
    return secrets;
  }

  /** Counts the failure on the endpoint (disabling it at the threshold, in the same statement) and throws. */
  private async failed(endpoint: WebhookEndpoint, failure: CallFailure, context: DeliveryContext): Promise<never> {
    const threshold = this.options.disableAfterFailures;
    const [counted] = await context.tenantData.db.$queryRaw<{ enabled: boolean; consecutiveFailures: number; disabledNow: boolean }[]>`
      UPDATE "WebhookEndpoint" AS e SET
        "consecutiveFailures" = e."consecutiveFailures" + 1,
        "lastFailureAt" = now(),
        "lastError" = ${failure.detail},
        "updatedAt" = now(),
        "enabled" = e."enabled" AND e."consecutiveFailures" + 1 < ${threshold},
        "disabledAt" = CASE WHEN e."enabled" AND e."consecutiveFailures" + 1 >= ${threshold} THEN now() ELSE e."disabledAt" END,
        "disabledReason" = CASE WHEN e."enabled" AND e."consecutiveFailures" + 1 >= ${threshold}
          THEN 'disabled after ' || (e."consecutiveFailures" + 1) || ' consecutive failed deliveries; last: ' || ${failure.summary}
          ELSE e."disabledReason" END
      FROM (SELECT "id", "enabled" AS "wasEnabled" FROM "WebhookEndpoint" WHERE "id" = ${endpoint.id}::uuid FOR UPDATE) AS before
      WHERE e."id" = before."id"
      RETURNING e."enabled", e."consecutiveFailures", (before."wasEnabled" AND NOT e."enabled") AS "disabledNow"`;
    if (counted?.disabledNow) {
      this.options.logger.warn(
        { tenantId: context.tenant.id, webhookEndpointId: endpoint.id, consecutiveFailures: counted.consecutiveFailures, last: failure.summary },
        'webhook endpoint disabled after consecutive failed deliveries',
      );
      throw new DeliveryError(`${failure.detail}; endpoint disabled after ${counted.consecutiveFailures} consecutive failed deliveries`, false);
    }
    if (counted && !counted.enabled) throw new DeliveryError(`${failure.detail}; endpoint disabled`, false);
    throw new DeliveryError(failure.detail, failure.retryable);
  }
}
