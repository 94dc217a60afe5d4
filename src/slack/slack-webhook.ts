import type { AuditActor } from '../audit/audit-entry';
import { writeAudit } from '../audit/audit-log';
import { Prisma, type SlackWebhook } from '../generated/prisma/tenant/client';
import type { CredentialBox } from '../outbound/credential-box';
import type { OutboundClient } from '../outbound/outbound-client';
import type { TenantPrisma } from '../tenancy/tenant-client-pool';
import type { TenantSql } from '../tenancy/tenant-sql';
import { checkedUrl } from '../webhooks/webhook-endpoints';

/*
 * The tenant's one Slack incoming webhook. Its URL is a credential (anyone holding it posts
 * into the channel), so it is sealed like a webhook secret and never shown again: the API
 * answers whether one is set and its host.
 */

const SLACK_ROW = 1;

export interface SlackWebhookView {
  configured: boolean;
  host: string | null;
  updatedAt: Date | null;
}

export interface SlackScope {
  db: TenantPrisma;
  sql: TenantSql;
  actor: AuditActor;
  tenantId: string;
}

export const slackUrlBinding = (tenantId: string) => `${tenantId}:slack`;

const NOT_CONFIGURED: SlackWebhookView = { configured: false, host: null, updatedAt: null };

export async function readSlackRow(sql: TenantSql): Promise<SlackWebhook | null> {
  const [row] = await sql.rows<SlackWebhook>(Prisma.sql`SELECT * FROM "SlackWebhook" WHERE "id" = ${SLACK_ROW}`);
  return row ?? null;
}

export class SlackWebhooks {
  constructor(private readonly deps: { outbound: OutboundClient; box: CredentialBox }) {}

  async get({ sql }: Pick<SlackScope, 'sql'>): Promise<SlackWebhookView> {
    const row = await readSlackRow(sql);
    return row ? { configured: true, host: row.host, updatedAt: row.updatedAt } : NOT_CONFIGURED;
  }

  async set(scope: SlackScope, raw: string): Promise<SlackWebhookView> {
    const url = await checkedUrl(this.deps.outbound, raw, 'url');
    const urlCiphertext = this.deps.box.seal(url.href, slackUrlBinding(scope.tenantId));
    const row = await scope.db.$transaction(async (tx) => {
      await writeAudit(tx, scope.actor, { action: 'slackWebhook.set', targetType: 'SlackWebhook', targetId: String(SLACK_ROW), metadata: { host: url.host } });
      return tx.slackWebhook.upsert({
        where: { id: SLACK_ROW },
        create: { id: SLACK_ROW, urlCiphertext, host: url.host },
        update: { urlCiphertext, host: url.host },
      });
    });
    return { configured: true, host: row.host, updatedAt: row.updatedAt };
  }

  /** Idempotent: removing what is not set changes nothing (and writes no audit entry). */
  async remove(scope: SlackScope): Promise<SlackWebhookView> {
    await scope.db.$transaction(async (tx) => {
      const removed = await tx.slackWebhook.deleteMany({ where: { id: SLACK_ROW } });
      if (removed.count > 0) await writeAudit(tx, scope.actor, { action: 'slackWebhook.removed', targetType: 'SlackWebhook', targetId: String(SLACK_ROW) });
    });
    return NOT_CONFIGURED;
  }
}
