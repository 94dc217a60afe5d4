import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { AuditActor } from '../audit/audit-entry';
import { writeAudit } from '../audit/audit-log';
import { isUuid } from '../database/uuid';
import { AppError, ErrorCode, assertNoNul, notFound } from '../errors/app-error';
import { EVENT_TYPES, type EventTypeName } from '../events/domain-event';
import { parseInput } from '../fleet/fleet-input';
import { Prisma, type WebhookEndpoint } from '../generated/prisma/tenant/client';
import type { TenantPrisma } from '../tenancy/tenant-client-pool';
import type { TenantSql } from '../tenancy/tenant-sql';
import type { CredentialBox } from '../outbound/credential-box';
import { OutboundError, type OutboundClient } from '../outbound/outbound-client';
import { newWebhookSecret } from './webhook-signature';

/*
 * A tenant's partner webhook endpoints (tenant schema, table WebhookEndpoint): registration,
 * changes, secret rotation. Delivery is webhook-channel.ts.
 */

/** Endpoints one tenant may hold: enough for its integrations, few enough that one event's fan-out stays small. */
export const MAX_WEBHOOK_ENDPOINTS = 20;
/** Event types one endpoint names (repeats included); there are fewer distinct ones. */
export const MAX_EVENT_TYPES = 30;
/** The longest a rotation keeps the old secret signing. */
export const MAX_GRACE_PERIOD_SECONDS = 7 * 24 * 3600;

export interface WebhookScope {
  db: TenantPrisma;
  sql: TenantSql;
  actor: AuditActor;
  /** The tenant's id: secrets are sealed for it. */
  tenantId: string;
}

/** An endpoint as the API shows it: never a secret. */
export interface WebhookEndpointView {
  id: string;
  url: string;
  description: string | null;
  eventTypes: EventTypeName[];
  enabled: boolean;
  disabledReason: string | null;
  disabledAt: Date | null;
  consecutiveFailures: number;
  previousSecretExpiresAt: Date | null;
  lastSuccessAt: Date | null;
  lastFailureAt: Date | null;
  lastError: string | null;
  createdAt: Date;
  updatedAt: Date;
}

const EVENT_TYPE_NAMES = new Set<string>(Object.values(EVENT_TYPES));

const eventTypes = z
  .array(z.string().refine((name) => EVENT_TYPE_NAMES.has(name), 'must be event types'))
  .min(1, 'must name at least one event type')
  .max(MAX_EVENT_TYPES, `must name at most ${MAX_EVENT_TYPES} event types`)
  .transform((names) => [...new Set(names)] as EventTypeName[]);
const description = z
  .string()
  .trim()
  .max(200, 'must be at most 200 characters')
  .refine((value) => !value.includes('\u0000'), 'must not contain NUL characters');

const createSchema = z.object({ url: z.string(), description: description.optional(), eventTypes });
const updateSchema = z.object({ url: z.string().optional(), description: description.nullable().optional(), eventTypes: eventTypes.optional(), enabled: z.boolean().optional() });

/** Where an endpoint's secrets are sealed: a ciphertext moved to another row or tenant does not open. */
export const endpointSecretBinding = (tenantId: string, endpointId: string) => `${tenantId}:webhook:${endpointId}`;

export function toView(row: WebhookEndpoint, now = new Date()): WebhookEndpointView {
  const inGrace = row.previousSecretExpiresAt !== null && row.previousSecretExpiresAt > now;
  return {
    id: row.id,
    url: row.url,
    description: row.description,
    eventTypes: row.eventTypes.filter((name): name is EventTypeName => EVENT_TYPE_NAMES.has(name)),
    enabled: row.enabled,
    disabledReason: row.disabledReason,
    disabledAt: row.disabledAt,
    consecutiveFailures: row.consecutiveFailures,
    previousSecretExpiresAt: inGrace ? row.previousSecretExpiresAt : null,
    lastSuccessAt: row.lastSuccessAt,
    lastFailureAt: row.lastFailureAt,
    lastError: row.lastError,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  };
}

/** What the audit log may say about a URL: its host (a path or query can carry a token). */
export function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return '(invalid)';
  }
}

export class WebhookEndpoints {
  constructor(private readonly deps: { outbound: OutboundClient; box: CredentialBox }) {}

  async list({ sql }: Pick<WebhookScope, 'sql'>): Promise<WebhookEndpointView[]> {
    const rows = await sql.rows<WebhookEndpoint>(Prisma.sql`SELECT * FROM "WebhookEndpoint" ORDER BY "createdAt", "id"`);
    const now = new Date();
    return rows.map((row) => toView(row, now));
  }

  async create(scope: WebhookScope, input: object): Promise<{ webhookEndpoint: WebhookEndpointView; secret: string }> {
    const parsed = parseInput(createSchema, input);
    const url = await this.allowedUrl(parsed.url, 'url');
    const id = randomUUID();
    const secret = newWebhookSecret();
    const row = await scope.db.$transaction(async (tx) => {
      // Two concurrent creates must not both see 19 endpoints.
      await tx.$executeRaw`LOCK TABLE "WebhookEndpoint" IN SHARE ROW EXCLUSIVE MODE`;
      const count = await tx.webhookEndpoint.count();
      if (count >= MAX_WEBHOOK_ENDPOINTS) {
        throw new AppError(ErrorCode.QUOTA_EXCEEDED, `A tenant holds at most ${MAX_WEBHOOK_ENDPOINTS} webhook endpoints and has ${count}; delete one first`, {
          extensions: { field: 'url' },
        });
      }
      await writeAudit(tx, scope.actor, {
        action: 'webhookEndpoint.created',
        targetType: 'WebhookEndpoint',
        targetId: id,
        metadata: { host: url.host, eventTypes: parsed.eventTypes },
      });
      return tx.webhookEndpoint.create({
        data: {
          id,
          url: url.href,
          description: parsed.description || null,
          eventTypes: parsed.eventTypes,
          secretCiphertext: this.deps.box.seal(secret, endpointSecretBinding(scope.tenantId, id)),
        },
      });
    });
    return { webhookEndpoint: toView(row), secret };
  }

  async update(scope: WebhookScope, id: string, input: object): Promise<WebhookEndpointView> {
    const parsed = parseInput(updateSchema, input, ['description']);
    const url = parsed.url === undefined ? undefined : await this.allowedUrl(parsed.url, 'url');
    const row = await scope.db.$transaction(async (tx) => {
      const current = isUuid(id) ? await tx.webhookEndpoint.findUnique({ where: { id } }) : null;
      if (!current) throw notFound('Webhook endpoint');
      const data: Prisma.WebhookEndpointUpdateInput = {};
      if (url) data.url = url.href;
      if (parsed.description !== undefined) data.description = parsed.description || null;
      if (parsed.eventTypes) data.eventTypes = parsed.eventTypes;
      if (parsed.enabled === true && !current.enabled) {
        Object.assign(data, { enabled: true, disabledReason: null, disabledAt: null, consecutiveFailures: 0 });
      } else if (parsed.enabled === false && current.enabled) {
        Object.assign(data, { enabled: false, disabledReason: null, disabledAt: new Date() });
      }
      await writeAudit(tx, scope.actor, {
        action: 'webhookEndpoint.updated',
        targetType: 'WebhookEndpoint',
        targetId: id,
        metadata: {
          fields: Object.keys(parsed),
          host: hostOf(url?.href ?? current.url),
          ...(parsed.enabled === undefined ? {} : { enabled: parsed.enabled }),
          ...(parsed.eventTypes ? { eventTypes: parsed.eventTypes } : {}),
        },
      });
      return tx.webhookEndpoint.update({ where: { id }, data });
    });
    return toView(row);
  }

  async delete(scope: WebhookScope, id: string): Promise<string> {
    await scope.db.$transaction(async (tx) => {
      const [removed] = isUuid(id)
        ? await tx.$queryRaw<{ url: string }[]>`DELETE FROM "WebhookEndpoint" WHERE "id" = ${id}::uuid RETURNING "url"`
        : [];
      if (!removed) throw notFound('Webhook endpoint');
      await writeAudit(tx, scope.actor, { action: 'webhookEndpoint.deleted', targetType: 'WebhookEndpoint', targetId: id, metadata: { host: hostOf(removed.url) } });
    });
    return id;
  }

  /**
   * A new secret; the current one stays valid for `gracePeriodSeconds` (0: not at all). A
   * rotation during another's grace period drops the oldest: two secrets at most.
   */
  async rotateSecret(scope: WebhookScope, id: string, gracePeriodSeconds: number): Promise<{ webhookEndpoint: WebhookEndpointView; secret: string }> {
    if (!Number.isInteger(gracePeriodSeconds) || gracePeriodSeconds < 0 || gracePeriodSeconds > MAX_GRACE_PERIOD_SECONDS) {
      throw new AppError(ErrorCode.BAD_USER_INPUT, `gracePeriodSeconds must be from 0 to ${MAX_GRACE_PERIOD_SECONDS} (a week)`, { extensions: { field: 'gracePeriodSeconds' } });
    }
    const secret = newWebhookSecret();
    const row = await scope.db.$transaction(async (tx) => {
      // FOR UPDATE: two rotations at once must not both keep the same "previous" secret.
      const [current] = isUuid(id)
        ? await tx.$queryRaw<WebhookEndpoint[]>`SELECT * FROM "WebhookEndpoint" WHERE "id" = ${id}::uuid FOR UPDATE`
        : [];
      if (!current) throw notFound('Webhook endpoint');
      await writeAudit(tx, scope.actor, {
        action: 'webhookEndpoint.secretRotated',
        targetType: 'WebhookEndpoint',
        targetId: id,
        metadata: { host: hostOf(current.url), gracePeriodSeconds },
      });
      return tx.webhookEndpoint.update({
        where: { id },
        data: {
          secretCiphertext: this.deps.box.seal(secret, endpointSecretBinding(scope.tenantId, id)),
          previousSecretCiphertext: gracePeriodSeconds > 0 ? current.secretCiphertext : null,
          previousSecretExpiresAt: gracePeriodSeconds > 0 ? new Date(Date.now() + gracePeriodSeconds * 1000) : null,
        },
      });
    });
    return { webhookEndpoint: toView(row), secret };
  }

  private allowedUrl(raw: string, field: string): Promise<URL> {
    return checkedUrl(this.deps.outbound, raw, field);
  }
}

/** The URL, checked by the outbound guard (resolving its host now), or URL_NOT_ALLOWED; the Slack settings use it too. */
export async function checkedUrl(outbound: OutboundClient, raw: string, field: string): Promise<URL> {
  assertNoNul(raw, field);
  try {
    return await outbound.checkUrl(raw.trim());
  } catch (error) {
    if (error instanceof OutboundError) throw new AppError(ErrorCode.URL_NOT_ALLOWED, `${field}: ${error.message}`, { extensions: { field } });
    throw error;
  }
}
