import { LRUCache } from 'lru-cache';
import type { PlatformPrisma } from '../database/platform-database';
import type { NotificationSubscriber, PlatformChannel, PlatformNotifications } from '../database/platform-notifications';
import type { Tenant } from '../generated/prisma/platform/client';
import { isUuid } from '../database/uuid';

export type TenantRecord = Tenant;

/**
 * Looks tenants up by id or slug, cached. The platform trigger notifies every instance of each
 * change to a tenant row and the entry is dropped at once, so a suspension or a rate-limit
 * override applies to the very next request on every instance. While notifications are down
 * the cache is bypassed, so a missed notification cannot leave a stale entry behind.
 */
export class TenantDirectory implements NotificationSubscriber {
  private readonly byId: LRUCache<string, TenantRecord>;
  private readonly idBySlug = new Map<string, string>();
  /** Bumped on every invalidation: a lookup that raced one does not store its result. */
  private generation = 0;

  constructor(
    private readonly prisma: PlatformPrisma,
    private readonly notifications: PlatformNotifications | null,
    cacheMax: number,
  ) {
    this.byId = new LRUCache({
      max: cacheMax,
      dispose: (tenant) => {
        if (this.idBySlug.get(tenant.slug) === tenant.id) this.idBySlug.delete(tenant.slug);
      },
    });
    notifications?.subscribe(this);
  }

  async findById(id: string): Promise<TenantRecord | null> {
    const cached = this.caching() ? this.byId.get(id) : undefined;
    if (cached) return cached;
    if (!isUuid(id)) return null;
    const generation = this.generation;
    const tenant = await this.prisma.tenant.findUnique({ where: { id } });
    if (tenant) this.remember(tenant, generation);
    return tenant;
  }

  async findBySlug(slug: string): Promise<TenantRecord | null> {
    const id = this.caching() ? this.idBySlug.get(slug) : undefined;
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

  onNotification(channel: PlatformChannel, payload: string): void {
    if (channel === 'fleet_tenant_changes') this.invalidate(payload);
  }

  onReset(): void {
    this.generation += 1;
    this.byId.clear();
  }

  private caching(): boolean {
    return this.notifications?.isListening() ?? false;
  }

  private remember(tenant: TenantRecord, generation: number): void {
    if (!this.caching() || generation !== this.generation) return;
    this.byId.set(tenant.id, tenant);
    this.idBySlug.set(tenant.slug, tenant.id);
  }
}
