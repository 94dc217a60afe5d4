import { userActor } from '../audit/audit-entry';
import { queueAudit } from '../audit/audit-log';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { PlatformDatabase, PlatformTransaction } from '../database/platform-database';
import { NotifiedCache } from '../database/notified-cache';
import type { NotificationSubscriber, PlatformChannel, PlatformNotifications } from '../database/platform-notifications';
import { AppError, ErrorCode, assertNoNul, badInput, forbidden, notFound } from '../errors/app-error';
import type { ApiKey } from '../generated/prisma/platform/client';
import { ROLE_RANK, type ApiKeyPrincipal, type MemberPrincipal, type MemberRole } from '../auth/principal';
import { assertTenantServes } from '../auth/session-service';
import { lockActorMembership } from '../auth/member-service';
import type { TenantDirectory } from '../tenancy/tenant-directory';
import { isUuid } from '../database/uuid';
import type { Metrics } from '../observability/metrics';
import { assertPlatformQuotaRoom } from '../quotas/quota-guard';

export type ApiKeyModel = ApiKey;

/*
 * API keys look like `fgk_<prefix>_<secret>`: the prefix (8 hex characters) finds the key and is
 * safe to show; the secret (32 random bytes) is shown once, at creation, and stored only as a
 * SHA-256 (a key is high-entropy, so a fast hash is enough; bcrypt would cost every request).
 */

const KEY_PATTERN = /^fgk_([0-9a-f]{8})_([A-Za-z0-9_-]{43})$/;
export const API_KEY_PREFIX = 'fgk_';

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

export function looksLikeApiKey(token: string): boolean {
  return token.startsWith(API_KEY_PREFIX);
}

/** lastUsedAt is informative; write it at most this often per key. */
const LAST_USED_WRITE_INTERVAL_MS = 60_000;

/**
 * Creates, lists, revokes and checks API keys. Keys in use are cached by prefix, so a partner's
 * requests skip the key query; a trigger notifies every instance of each revocation or change
 * (see NotifiedCache), so a revoked key is refused on its next request everywhere.
 */
export class ApiKeyService implements NotificationSubscriber {
  private readonly lastUsedWrites = new Map<string, number>();
  private readonly byPrefix: NotifiedCache<string, ApiKey>;

  constructor(
    private readonly deps: {
      platform: PlatformDatabase;
      directory: TenantDirectory;
      notifications: PlatformNotifications | null;
      cacheMax: number;
      metrics?: Pick<Metrics, 'recordApiKeys'>;
    },
  ) {
    this.byPrefix = new NotifiedCache(deps.notifications, { max: deps.cacheMax });
    deps.notifications?.subscribe(this);
  }

  onNotification(channel: PlatformChannel, payload: string): void {
    if (channel !== 'fleet_access_changes' || !payload.startsWith('apiKey:')) return;
    this.byPrefix.delete(payload.slice('apiKey:'.length));
  }

  onReset(): void {
    this.byPrefix.clear();
  }

  async create(
    actor: MemberPrincipal,
    input: { name: string; role: MemberRole; expiresAt?: Date | null; persistedOnly?: boolean | null },
    requestId: string | null,
  ): Promise<{ apiKey: ApiKeyModel; secret: string }> {
    const name = input.name.trim();
    if (name.length === 0 || name.length > 100) throw badInput('name must be 1 to 100 characters', 'name');
    assertNoNul(name, 'name');
    if (ROLE_RANK[input.role] > ROLE_RANK[actor.role]) {
      throw forbidden(`A ${actor.role} cannot create a key with the ${input.role} role`);
    }
    if (input.role === 'OWNER') throw badInput('An API key cannot have the OWNER role', 'role');
    if (input.expiresAt && input.expiresAt.getTime() <= Date.now()) throw badInput('expiresAt must be in the future', 'expiresAt');
    const prefix = randomBytes(4).toString('hex');
    const secret = `${API_KEY_PREFIX}${prefix}_${randomBytes(32).toString('base64url')}`;
    const apiKey = await this.deps.platform.prisma.$transaction(async (tx) => {
      // Demoting or removing the creator revokes their keys above their new role: under this
      // lock, such a change either waits for the key and revokes it, or is seen here.
      await lockActorMembership(tx, actor);
      await assertPlatformQuotaRoom(tx, actor.tenant, 'API_KEYS');
      const created = await tx.apiKey.create({
        data: {
          tenantId: actor.tenant.id,
          name,
          prefix,
          secretHash: sha256(secret).toString('hex'),
          role: input.role,
          persistedOnly: input.persistedOnly ?? false,
          expiresAt: input.expiresAt ?? null,
          createdByUserId: actor.userId,
        },
      });
      await queueAudit(tx, actor.tenant.id, userActor(actor.userId, requestId), {
        action: 'apiKey.created',
        targetType: 'ApiKey',
        targetId: created.id,
        metadata: { name, role: input.role, persistedOnly: created.persistedOnly },
      });
      return created;
    });
    this.deps.metrics?.recordApiKeys('created');
    return { apiKey, secret };
  }

  list(tenantId: string): Promise<ApiKeyModel[]> {
    return this.deps.platform.prisma.apiKey.findMany({ where: { tenantId }, orderBy: { createdAt: 'asc' } });
  }

  /** Revoked keys stop working on their next request, on every instance. */
  async revoke(actor: MemberPrincipal, keyId: string, requestId: string | null): Promise<ApiKeyModel> {
    const key = isUuid(keyId)
      ? await this.deps.platform.prisma.apiKey.findFirst({ where: { id: keyId, tenantId: actor.tenant.id } })
      : null;
    if (!key) throw notFound('API key');
    if (key.revokedAt) return key;
    const revoked = await this.deps.platform.prisma.$transaction(async (tx) => {
      const updated = await tx.apiKey.update({ where: { id: key.id }, data: { revokedAt: new Date() } });
      await queueAudit(tx, actor.tenant.id, userActor(actor.userId, requestId), { action: 'apiKey.revoked', targetType: 'ApiKey', targetId: key.id, metadata: { name: key.name } });
      return updated;
    });
    // Not waiting for our own notification: the next request here must already see it.
    this.byPrefix.delete(key.prefix);
    this.deps.metrics?.recordApiKeys('revoked');
    return revoked;
  }

  /**
   * Revokes, inside `tx`, the live keys `userId` created in the tenant (with a role matching
   * `role`, when given); returns their prefixes, for `forget` once `tx` has committed.
   */
  async revokeCreatedBy(
    tx: PlatformTransaction,
    by: { tenantId: string; userId: string; role?: { in: MemberRole[] } | undefined },
  ): Promise<string[]> {
    const revoked = await tx.apiKey.updateManyAndReturn({
      where: { tenantId: by.tenantId, createdByUserId: by.userId, role: by.role, revokedAt: null },
      data: { revokedAt: new Date() },
      select: { prefix: true },
    });
    return revoked.map((key) => key.prefix);
  }

  /** Drops keys from this instance's cache at once (other instances hear it from the trigger). */
  forget(prefixes: string[]): void {
    // Called once the revoking transaction committed (revokeCreatedBy's keys): counted here.
    if (prefixes.length > 0) this.deps.metrics?.recordApiKeys('revoked', prefixes.length);
    this.byPrefix.delete(...prefixes);
  }

  /** The principal a presented key stands for; UNAUTHENTICATED if unknown, revoked or expired. */
  async authenticate(presented: string): Promise<ApiKeyPrincipal> {
    const invalid = () => new AppError(ErrorCode.UNAUTHENTICATED, 'Invalid, revoked or expired API key', { httpStatus: 401 });
    const match = KEY_PATTERN.exec(presented);
    if (!match?.[1]) throw invalid();
    const key = await this.findByPrefix(match[1]);
    const expected = key ? Buffer.from(key.secretHash, 'hex') : sha256('no such key');
    const matches = timingSafeEqual(expected, sha256(presented));
    if (!key || !matches || key.revokedAt || (key.expiresAt && key.expiresAt.getTime() <= Date.now())) throw invalid();
    const tenant = await this.deps.directory.findById(key.tenantId);
    if (!tenant) throw invalid();
    assertTenantServes(tenant);
    this.touch(key.id);
    return { kind: 'apiKey', keyId: key.id, name: key.name, tenant, role: key.role, persistedOnly: key.persistedOnly };
  }

  private async findByPrefix(prefix: string): Promise<ApiKey | null> {
    const cached = this.byPrefix.get(prefix);
    if (cached) return cached;
    const snapshot = this.byPrefix.snapshot();
    const key = await this.deps.platform.prisma.apiKey.findUnique({ where: { prefix } });
    // Only keys that can still work are worth keeping; unknown prefixes are not cached, so
    // guessing cannot flush the keys partners use.
    if (key && !key.revokedAt) this.byPrefix.set(prefix, key, snapshot);
    return key;
  }

  private touch(keyId: string): void {
    const now = Date.now();
    if (now - (this.lastUsedWrites.get(keyId) ?? 0) < LAST_USED_WRITE_INTERVAL_MS) return;
    this.lastUsedWrites.set(keyId, now);
    if (this.lastUsedWrites.size > 10_000) this.lastUsedWrites.clear();
    void this.deps.platform.prisma.apiKey.update({ where: { id: keyId }, data: { lastUsedAt: new Date(now) } }).catch(() => undefined);
  }
}
