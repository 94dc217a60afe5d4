import type { PlatformDatabase, PlatformTransaction } from '../database/platform-database';
import { isForeignKeyViolation } from '../database/prisma-errors';
import { AppError, ErrorCode } from '../errors/app-error';
import { lockAccount, replacePassword } from './account-lock';
import type { Logger } from '../observability/logger';
import { countedAttempt, type RecordAuthAttempt } from '../observability/metrics';
import type { TenantDirectory, TenantRecord } from '../tenancy/tenant-directory';
import type { AccessTokens } from './access-tokens';
import type { PasswordHasher } from './passwords';
import { hashSecret, newSecret } from './secrets';
import type { MemberPrincipal, MemberRole } from './principal';
import type { SessionStateCache } from './session-state-cache';
import { switchTenant } from './tenant-switch';

export interface AuthPayload {
  accessToken: string;
  refreshToken: string;
  expiresAt: Date;
}

const REFRESH_TOKEN_PREFIX = 'rt_';
const newRefreshToken = () => newSecret(REFRESH_TOKEN_PREFIX);

/** PostgreSQL text cannot hold NUL: such a value matches no stored row (and must not reach a query). */
const storable = (value: string) => !value.includes('\u0000');

const invalidCredentials = () =>
  new AppError(ErrorCode.UNAUTHENTICATED, 'Invalid email, password or tenant', { httpStatus: 401 });
const accountNoLongerExists = () => new AppError(ErrorCode.UNAUTHENTICATED, 'Account no longer exists', { httpStatus: 401 });
const invalidRefreshToken = () =>
  new AppError(ErrorCode.UNAUTHENTICATED, 'Invalid or expired refresh token', { httpStatus: 401 });

export function assertTenantServes(tenant: Pick<TenantRecord, 'slug' | 'status'>): void {
  if (tenant.status === 'ACTIVE') return;
  if (tenant.status === 'SUSPENDED') {
    throw new AppError(ErrorCode.TENANT_SUSPENDED, `Tenant "${tenant.slug}" is suspended`, { httpStatus: 403 });
  }
  throw new AppError(ErrorCode.TENANT_NOT_READY, `Tenant "${tenant.slug}" is not ready (${tenant.status})`, { httpStatus: 503 });
}

/**
 * Logins, refresh-token rotation and logout. A session is one refresh-token family: every
 * refresh consumes its token and issues the next; presenting a consumed token again means it was
 * stolen or replayed, and the whole family is revoked (access tokens carry the session id, so
 * they stop working too).
 */
export class SessionService {
  constructor(
    private readonly deps: {
      platform: PlatformDatabase;
      directory: TenantDirectory;
      passwords: PasswordHasher;
      accessTokens: AccessTokens;
      refreshTokenTtlSeconds: number;
      logger: Logger;
      sessionCache: SessionStateCache;
      /** Metrics: each login, admin login and refresh, with its outcome. */
      onAuthAttempt?: RecordAuthAttempt;
    },
  ) {}

  login(input: { tenant: string; email: string; password: string }): Promise<AuthPayload> {
    return countedAttempt(this.deps.onAuthAttempt, 'login', () => this.attemptLogin(input));
  }

  adminLogin(input: { email: string; password: string }): Promise<AuthPayload> {
    return countedAttempt(this.deps.onAuthAttempt, 'admin_login', () => this.attemptAdminLogin(input));
  }

  refresh(token: string): Promise<AuthPayload> {
    return countedAttempt(this.deps.onAuthAttempt, 'refresh', () => this.attemptRefresh(token));
  }

  /** Moves a member's sign-in to another of the account's tenants, without the password (tenant-switch.ts). */
  switchTenant(caller: MemberPrincipal, slug: string): Promise<AuthPayload> {
    const { platform, sessionCache } = this.deps;
    return switchTenant({ platform, sessionCache, issueTokens: (sessionId, who, db) => this.issueTokens(sessionId, who, db) }, caller, slug);
  }

  private async attemptLogin(input: { tenant: string; email: string; password: string }): Promise<AuthPayload> {
    const email = input.email.trim().toLowerCase();
    const slug = input.tenant.trim().toLowerCase();
    const { prisma } = this.deps.platform;
    const tenant = slug.length <= 40 && storable(slug) ? await this.deps.directory.findBySlug(slug) : null;
    const user = storable(email) ? await prisma.user.findUnique({ where: { email } }) : null;
    const passwordOk = await this.deps.passwords.verify(input.password, user?.passwordHash);
    const membership =
      user && tenant && passwordOk
        ? await prisma.membership.findUnique({ where: { userId_tenantId: { userId: user.id, tenantId: tenant.id } } })
        : null;
    if (!user || !tenant || !passwordOk || !membership) throw invalidCredentials();
    assertTenantServes(tenant);
    return this.startSession({ userId: user.id, tenantId: tenant.id, role: membership.role }, user.passwordHash, invalidCredentials);
  }

  private async attemptAdminLogin(input: { email: string; password: string }): Promise<AuthPayload> {
    const email = input.email.trim().toLowerCase();
    const admin = storable(email) ? await this.deps.platform.prisma.platformAdmin.findUnique({ where: { email } }) : null;
    const passwordOk = await this.deps.passwords.verify(input.password, admin?.passwordHash);
    const invalidAdminCredentials = () => new AppError(ErrorCode.UNAUTHENTICATED, 'Invalid email or password', { httpStatus: 401 });
    if (!admin || !passwordOk) throw invalidAdminCredentials();
    return this.startSession({ adminId: admin.id }, admin.passwordHash, invalidAdminCredentials);
  }

  private async attemptRefresh(token: string): Promise<AuthPayload> {
    const { prisma } = this.deps.platform;
    if (!token.startsWith(REFRESH_TOKEN_PREFIX)) throw invalidRefreshToken();
    const stored = await prisma.refreshToken.findUnique({ where: { tokenHash: hashSecret(token) }, include: { session: true } });
    if (!stored) throw invalidRefreshToken();
    const { session } = stored;
    const now = new Date();
    if (stored.usedAt) {
      await this.revokeSession(session.id, 'refresh token reuse');
      this.deps.logger.warn({ sessionId: session.id }, 'refresh token reused; session revoked');
      throw invalidRefreshToken();
    }
    if (session.revokedAt || session.expiresAt <= now || stored.expiresAt <= now) throw invalidRefreshToken();
    let role: MemberRole | 'PLATFORM_ADMIN' = 'PLATFORM_ADMIN';
    if (session.tenantId && session.userId) {
      const tenant = await this.deps.directory.findById(session.tenantId);
      const membership = await prisma.membership.findUnique({
        where: { userId_tenantId: { userId: session.userId, tenantId: session.tenantId } },
      });
      if (!tenant || !membership) {
        await this.revokeSession(session.id, 'membership removed');
        throw invalidRefreshToken();
      }
      // Before the token is spent: refused while the tenant is suspended, it still works once
      // the tenant is reactivated instead of counting as reuse.
      assertTenantServes(tenant);
      role = membership.role;
    }
    // Consume atomically: of two concurrent refreshes with one token, one wins and the other
    // counts as reuse.
    const consumed = await prisma.refreshToken.updateMany({ where: { id: stored.id, usedAt: null }, data: { usedAt: now } });
    if (consumed.count === 0) {
      await this.revokeSession(session.id, 'refresh token reuse');
      throw invalidRefreshToken();
    }
    return this.issueTokens(session.id, { userId: session.userId, tenantId: session.tenantId, adminId: session.adminId, role });
  }

  /**
   * Sets a new password after checking the current one, and signs out every other session of
   * the account (a password change is what people do when they fear someone else is signed in).
   */
  async changePassword(
    who: { userId: string; sessionId: string } | { adminId: string; sessionId: string },
    input: { currentPassword: string; newPassword: string },
  ): Promise<number> {
    const { prisma } = this.deps.platform;
    const account =
      'userId' in who
        ? await prisma.user.findUnique({ where: { id: who.userId }, select: { passwordHash: true } })
        : await prisma.platformAdmin.findUnique({ where: { id: who.adminId }, select: { passwordHash: true } });
    if (!account) throw accountNoLongerExists();
    const newHash = await this.deps.passwords.hashChange(account.passwordHash, input);
    const caller = { account: 'userId' in who ? { userId: who.userId } : { adminId: who.adminId }, sessionId: who.sessionId };
    const others = await prisma.$transaction((tx) =>
      replacePassword(tx, caller, { checkedHash: account.passwordHash, newHash, reason: 'password changed', accountGone: accountNoLongerExists }),
    );
    for (const sessionId of others) this.deps.sessionCache.invalidateSession(sessionId);
    return others.length;
  }

  async logout(sessionId: string): Promise<void> {
    await this.revokeSession(sessionId, 'logout');
  }

  async revokeSession(sessionId: string, reason: string): Promise<void> {
    await this.deps.platform.prisma.session.updateMany({
      where: { id: sessionId, revokedAt: null },
      data: { revokedAt: new Date(), revokedReason: reason },
    });
    // Other instances hear of it from the platform trigger; this one need not wait.
    this.deps.sessionCache.invalidateSession(sessionId);
  }

  /**
   * Starts a session for an account whose password was just checked against `verifiedHash`.
   * The account row is share-locked and the hash checked again: a password change (which takes
   * that row first, then ends the account's sessions) either waits for this session and ends it
   * too, or commits first, and then the old password starts nothing.
   */
  private async startSession(
    who: { userId: string; tenantId: string; role: MemberRole } | { adminId: string },
    verifiedHash: string,
    refusal: () => AppError,
  ): Promise<AuthPayload> {
    return this.deps.platform.prisma.$transaction(async (tx) => {
      const passwordHash = await lockAccount(tx, 'adminId' in who ? { adminId: who.adminId } : { userId: who.userId }, 'SHARE');
      if (passwordHash !== verifiedHash) throw refusal();
      const session = await tx.session.create({
        data: {
          ...('adminId' in who ? { adminId: who.adminId } : { userId: who.userId, tenantId: who.tenantId }),
          expiresAt: new Date(Date.now() + this.deps.refreshTokenTtlSeconds * 1000),
        },
      });
      // In the same transaction: the account cannot be deleted (taking its session along)
      // between the session and its first refresh token.
      return this.issueTokens(session.id, 'adminId' in who ? { adminId: who.adminId, role: 'PLATFORM_ADMIN' } : who, tx);
    });
  }

  private async issueTokens(
    sessionId: string,
    who: { userId?: string | null; tenantId?: string | null; adminId?: string | null; role: MemberRole | 'PLATFORM_ADMIN' },
    db: Pick<PlatformTransaction, 'refreshToken'> = this.deps.platform.prisma,
  ): Promise<AuthPayload> {
    const refreshToken = newRefreshToken();
    try {
      await db.refreshToken.create({
        data: {
          sessionId,
          tokenHash: hashSecret(refreshToken),
          expiresAt: new Date(Date.now() + this.deps.refreshTokenTtlSeconds * 1000),
        },
      });
    } catch (error) {
      // The session went (its account was deleted) since it was checked: it has ended.
      if (isForeignKeyViolation(error)) throw invalidRefreshToken();
      throw error;
    }
    const subject = who.adminId ?? who.userId;
    if (!subject) throw new Error('session without a subject');
    const access = this.deps.accessTokens.issue({
      sub: subject,
      sid: sessionId,
      role: who.role,
      ...(who.tenantId ? { tid: who.tenantId } : {}),
    });
    return { accessToken: access.token, refreshToken, expiresAt: access.expiresAt };
  }
}
