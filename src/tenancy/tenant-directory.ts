import { LRUCache } from 'lru-cache';
import pg from 'pg';
import type { PlatformPrisma } from '../database/platform-database';
import type { Tenant } from '../generated/prisma/platform/client';
import type { Logger } from '../observability/logger';

export type TenantRecord = Tenant;

/** The channel the platform migration's trigger notifies with a tenant id on every change. */
export const TENANT_CHANGES_CHANNEL = 'fleet_tenant_changes';

const RECONNECT_DELAY_MS = 1_000;

/**
 * Looks tenants up by id or slug, cached. Every instance LISTENs for the platform trigger's
 * notifications and drops a tenant's entry the moment its row changes, so a suspension applies
 * to the very next request on every instance. While the LISTEN connection is down the cache is
 * bypassed, so a missed notification cannot leave a stale entry behind.
 */
export class TenantDirectory {
  private readonly byId: LRUCache<string, TenantRecord>;
  private readonly idBySlug = new Map<string, string>();
  private listener: pg.Client | null = null;
  private listening = false;
  private closed = false;
  private reconnectTimer: NodeJS.Timeout | null = null;
  /** Bumped on every invalidation: a lookup that raced one does not store its result. */
  private generation = 0;

  constructor(
    private readonly prisma: PlatformPrisma,
    private readonly listenConfig: pg.ClientConfig,
    private readonly logger: Logger,
    cacheMax: number,
  ) {
    this.byId = new LRUCache({
      max: cacheMax,
      dispose: (tenant) => {
        if (this.idBySlug.get(tenant.slug) === tenant.id) this.idBySlug.delete(tenant.slug);
      },
    });
  }

  async start(): Promise<void> {
    await this.listen();
  }

  async findById(id: string): Promise<TenantRecord | null> {
    const cached = this.listening ? this.byId.get(id) : undefined;
    if (cached) return cached;
    if (!UUID.test(id)) return null;
    const generation = this.generation;
    const tenant = await this.prisma.tenant.findUnique({ where: { id } });
    if (tenant) this.remember(tenant, generation);
    return tenant;
  }

  async findBySlug(slug: string): Promise<TenantRecord | null> {
    const id = this.listening ? this.idBySlug.get(slug) : undefined;
    const cached = id ? this.byId.get(id) : undefined;
    if (cached) return cached;
    const generation = this.generation;
    const tenant = await this.prisma.tenant.findUnique({ where: { slug } });
    if (tenant) this.remember(tenant, generation);
    return tenant;
  }

  /** Drops one tenant (the writer calls this too, not to wait for its own notification). */
  invalidate(tenantId: string): void {
    this.generation += 1;
    this.byId.delete(tenantId);
  }

  isListening(): boolean {
    return this.listening;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.listening = false;
    await this.listener?.end().catch(() => undefined);
  }

  private remember(tenant: TenantRecord, generation: number): void {
    if (!this.listening || generation !== this.generation) return;
    this.byId.set(tenant.id, tenant);
    this.idBySlug.set(tenant.slug, tenant.id);
  }

  private async listen(): Promise<void> {
    const client = new pg.Client({ ...this.listenConfig, application_name: 'fleet-graphql-listen' });
    const lost = () => {
      if (this.listener !== client) return;
      this.listener = null;
      this.listening = false;
      this.generation += 1;
      this.byId.clear();
      if (!this.closed) {
        this.logger.warn('tenant change notifications lost; tenant cache bypassed until reconnected');
        this.reconnectTimer = setTimeout(() => void this.listen().catch(() => undefined), RECONNECT_DELAY_MS);
        this.reconnectTimer.unref();
      }
    };
    client.on('error', lost);
    client.on('end', lost);
    client.on('notification', (message) => {
      if (message.channel === TENANT_CHANGES_CHANNEL && message.payload) this.invalidate(message.payload);
    });
    this.listener = client;
    try {
      await client.connect();
      await client.query(`LISTEN ${TENANT_CHANGES_CHANNEL}`);
    } catch (error) {
      lost();
      throw error;
    }
    if (this.closed) {
      await client.end();
      return;
    }
    this.listening = true;
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
