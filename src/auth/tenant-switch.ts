import type { PlatformDatabase, PlatformTransaction } from '../database/platform-database';
import { AppError, ErrorCode, badInput } from '../errors/app-error';
import { MAX_PAGE_SIZE } from '../graphql/pagination';
import { isValidSlug } from '../tenancy/tenant-naming';
import { lockAccount } from './account-lock';
import type { MemberPrincipal, MemberRole } from './principal';
import type { AuthPayload } from './session-service';
import type { SessionStateCache } from './session-state-cache';

/*
 * An account that belongs to several tenants: the tenants it may act in, and moving its sign-in
 * from one to another without the password (docs/decisions/0022-tenant-switch.md).
 */

export interface MembershipModel {
  tenant: { id: string; slug: string; name: string };
  role: MemberRole;
  joinedAt: Date;
  current: boolean;
}

export const DEFAULT_MEMBERSHIPS_PAGE = 20;

/**
 * The caller's memberships in ACTIVE tenants, by slug: the tenants a switch can go to. A
 * suspended (or deleted, or not yet provisioned) tenant is left out, as it serves nobody; it
 * comes back with its reactivation. `after` is the last slug of the previous page.
 */
export async function listMemberships(
  platform: PlatformDatabase,
  caller: MemberPrincipal,
  page: { first?: number | null; after?: string | null },
): Promise<MembershipModel[]> {
  const take = page.first ?? DEFAULT_MEMBERSHIPS_PAGE;
  if (!Number.isInteger(take) || take < 1 || take > MAX_PAGE_SIZE) throw badInput(`first must be between 1 and ${MAX_PAGE_SIZE}`, 'first');
  const after = page.after ?? undefined;
  // Every stored slug is a valid one; anything else (NUL included) is not a position in the list.
  if (after !== undefined && !isValidSlug(after)) throw badInput('after must be a tenant slug from the previous page', 'after');
  const rows = await platform.prisma.membership.findMany({
    where: { userId: caller.userId, tenant: { status: 'ACTIVE', ...(after ? { slug: { gt: after } } : {}) } },
    select: { role: true, createdAt: true, tenant: { select: { id: true, slug: true, name: true } } },
    orderBy: { tenant: { slug: 'asc' } },
    take,
  });
  return rows.map((row) => ({ tenant: row.tenant, role: row.role, joinedAt: row.createdAt, current: row.tenant.id === caller.tenant.id }));
}

/**
 * One answer for every tenant the caller cannot switch to (unknown, not a member, suspended,
 * membership removed): which of these it is would tell an outsider which slugs exist.
 */
const noSuchTenant = () => new AppError(ErrorCode.NOT_FOUND, 'No tenant by that slug among your memberships');
const sessionEnded = () => new AppError(ErrorCode.UNAUTHENTICATED, 'Session ended; log in again', { httpStatus: 401 });

export interface TenantSwitchDeps {
  platform: PlatformDatabase;
  sessionCache: SessionStateCache;
  /** SessionService's: the first access and refresh token of a new session, inside `db`'s transaction. */
  issueTokens(
    sessionId: string,
    who: { userId: string; tenantId: string; role: MemberRole },
    db: Pick<PlatformTransaction, 'refreshToken'>,
  ): Promise<AuthPayload>;
}

/**
 * Ends the caller's session and starts one for the same account in `slug`'s tenant, with the
 * account's role there. The new session expires when the old one would have: switching never
 * lengthens a sign-in, so a borrowed access token cannot be turned into a longer-lived one by
 * switching back and forth.
 *
 * Under the account's share lock (account-lock.ts), like a login: a password change or the
 * removal of the membership either waits and then ends the new session too, or commits first
 * and is seen here.
 */
export async function switchTenant(deps: TenantSwitchDeps, caller: MemberPrincipal, slugInput: string): Promise<AuthPayload> {
  const slug = slugInput.trim().toLowerCase();
  if (!isValidSlug(slug)) throw noSuchTenant();
  const payload = await deps.platform.prisma.$transaction(async (tx) => {
    if ((await lockAccount(tx, { userId: caller.userId }, 'SHARE')) === null) throw sessionEnded();
    // One query whatever the reason for refusing, so that the answer's timing does not tell
    // an unknown slug from someone else's tenant either.
    const membership = await tx.membership.findFirst({
      where: { userId: caller.userId, tenant: { slug, status: 'ACTIVE' } },
      select: { role: true, tenantId: true },
    });
    if (!membership) throw noSuchTenant();
    const source = await tx.session.findUnique({ where: { id: caller.sessionId }, select: { expiresAt: true } });
    const now = new Date();
    // Conditional, so that of two switches with one session only one goes through.
    const ended = await tx.session.updateMany({
      where: { id: caller.sessionId, userId: caller.userId, revokedAt: null, expiresAt: { gt: now } },
      data: { revokedAt: now, revokedReason: 'switched tenant' },
    });
    if (!source || ended.count !== 1) throw sessionEnded();
    const session = await tx.session.create({
      data: { userId: caller.userId, tenantId: membership.tenantId, expiresAt: source.expiresAt },
    });
    return deps.issueTokens(session.id, { userId: caller.userId, tenantId: membership.tenantId, role: membership.role }, tx);
  });
  // Other instances hear of the ended session from the platform trigger; this one need not wait.
  deps.sessionCache.invalidateSession(caller.sessionId);
  return payload;
}
