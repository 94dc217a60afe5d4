import type { PlatformPrisma } from '../database/platform-database';
import type { NotificationSubscriber, PlatformChannel, PlatformNotifications } from '../database/platform-notifications';
import type { Tenant } from '../generated/prisma/platform/client';
import { NotifiedCache } from '../database/notified-cache';
import { isUuid } from '../database/uuid';
import { isValidSlug } from './tenant-naming';

export type TenantRecord = Tenant;

/**
 * Looks tenants up by id or slug, cached. The platform trigger notifies every instance of each
 * change to a tenant row and the entry is dropped at once, so a suspension or a rate-limit
 * override applies to the very next request on every instance. While notifications are down
 * the cache is bypassed, so a missed notification cannot leave a stale entry behind.
 */
export class TenantDirectory implements NotificationSubscriber {
  private readonly byId: NotifiedCache<string, TenantRecord>;
  private readonly idBySlug = new Map<string, string>();

  constructor(
    private readonly prisma: PlatformPrisma,
    notifications: PlatformNotifications | null,
    cacheMax: number,
  ) {
    this.byId = new NotifiedCache(notifications, {
      max: cacheMax,
      dispose: (tenant) => {
        if (this.idBySlug.get(tenant.slug) === tenant.id) this.idBySlug.delete(tenant.slug);
      },
    });
    notifications?.subscribe(this);
  }

  async findById(id: string): Promise<TenantRecord | null> {
    const cached = this.byId.get(id);
    if (cached) return cached;
    if (!isUuid(id)) return null;
    const snapshot = this.byId.snapshot();
    const tenant = await this.prisma.tenant.findUnique({ where: { id } });
    if (tenant) this.remember(tenant, snapshot);
    return tenant;
  }

  async findBySlug(slug: string): Promise<TenantRecord | null> {
    // Every stored slug passed isValidSlug, so nothing else can match; and some strings (NUL)
    // PostgreSQL would refuse with an error instead of "no row".
    if (!isValidSlug(slug)) return null;
    const id = this.idBySlug.get(slug);
    const cached = id ? this.byId.get(id) : undefined;
    if (cached) return cached;
    const snapshot = this.byId.snapshot();
    const tenant = await this.prisma.tenant.findUnique({ where: { slug } });
    if (tenant) this.remember(tenant, snapshot);
    return tenant;
  }

  /** Drops one tenant (the writer calls this too, not to wait for its own notification). */
  invalidate(tenantId: string): void {
    this.byId.delete(tenantId);
  }

  onNotification(channel: PlatformChannel, payload: string): void {
    if (channel === 'fleet_tenant_changes') this.invalidate(payload);
  }

  onReset(): void {
    this.byId.clear();
  }

  private remember(tenant: TenantRecord, snapshot: number): void {
    if (this.byId.set(tenant.id, tenant, snapshot)) this.idBySlug.set(tenant.slug, tenant.id);
  }
}
