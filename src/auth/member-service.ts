import { userActor } from '../audit/audit-entry';
import { queueAudit } from '../audit/audit-log';
import type { PlatformDatabase, PlatformTransaction } from '../database/platform-database';
import { AppError, ErrorCode, conflict, forbidden, notFound } from '../errors/app-error';
import type { PasswordHasher } from './passwords';
import { lockAccount } from './account-lock';
import { parseEmail, parsePersonName } from './person-input';
import { assertAcceptablePassword } from './passwords';
import type { SessionStateCache } from './session-state-cache';
import { ROLE_RANK, rolesAbove, type MemberPrincipal, type MemberRole } from './principal';
import type { ApiKeyService } from '../api-keys/api-key-service';
import type { EmailOutbox } from '../email/email-jobs';
import { isUuid } from '../database/uuid';
import { uniqueViolationFields } from '../database/prisma-errors';
import { assertPlatformQuotaRoom } from '../quotas/quota-guard';
import { toConnection, toSortValue, type ConnectionModel } from '../graphql/pagination';
import { allMembersOf, memberPageOf, type MemberListArgs, type MemberOrderArg, type MemberRow } from './member-list';

export interface MemberModel {
  userId: string;
  email: string;
  name: string;
  role: MemberRole;
  joinedAt: Date;
}

/** You can grant roles up to your own, never above it. */
export function assertMayGrant(actor: MemberPrincipal, role: MemberRole): void {
  if (ROLE_RANK[role] > ROLE_RANK[actor.role]) throw forbidden(`A ${actor.role} cannot grant the ${role} role`);
}

/**
 * Share-locks the actor's membership until `tx` ends and checks it still carries the role the
 * request was authorised with (the SDL's @auth and the rank rules ran on the role the request
 * started with). A demotion or removal of the actor then waits for `tx`, and withdraws what it
 * granted (see MemberService.withdrawGrants), or commits first and is seen here.
 */
export async function lockActorMembership(tx: PlatformTransaction, actor: MemberPrincipal): Promise<void> {
  const [membership] = await tx.$queryRaw<{ role: MemberRole }[]>`
    SELECT "role"::text AS "role" FROM platform."Membership"
    WHERE "userId" = ${actor.userId}::uuid AND "tenantId" = ${actor.tenant.id}::uuid FOR SHARE`;
  if (!membership) throw new AppError(ErrorCode.UNAUTHENTICATED, 'Session ended; log in again', { httpStatus: 401 });
  if (ROLE_RANK[membership.role] < ROLE_RANK[actor.role]) throw forbidden(`Your role changed to ${membership.role}; retry`);
}

/**
 * Membership management inside the caller's own tenant. Rules: you can only grant roles up to
 * your own and only change members ranked at most like you (so only an OWNER touches OWNERs),
 * and a tenant always keeps at least one OWNER. Nobody keeps through a key or an invitation more
 * than their role: demoting a member revokes the API keys and voids the invitations they made
 * above their new role, removing one revokes and voids all of theirs.
 */
export class MemberService {
  constructor(
    private readonly deps: { platform: PlatformDatabase; passwords: PasswordHasher; sessionCache: SessionStateCache; apiKeys: ApiKeyService; outbox: EmailOutbox },
  ) {}

  /** A page of the tenant's members (membersConnection), in one statement; totalCount in a second, when asked. */
  async page(tenantId: string, args: MemberListArgs): Promise<ConnectionModel<MemberModel>> {
    const { page, statement, count } = memberPageOf(tenantId, args);
    const { pool } = this.deps.platform;
    const rows = (await pool.query<MemberRow>(statement.text, statement.values)).rows;
    const totalCount = async () => (await pool.query<{ count: number }>(count.text, count.values)).rows[0]?.count ?? 0;
    return toConnection(rows, page, totalCount, (row) => toSortValue(row.sortKey));
  }

  /** Every member of the tenant in one list (the deprecated `members`), in the same orders as `page`. */
  async list(tenantId: string, orderBy?: MemberOrderArg | null): Promise<MemberModel[]> {
    const statement = allMembersOf(tenantId, orderBy);
    return (await this.deps.platform.pool.query<MemberRow>(statement.text, statement.values)).rows;
  }

  async findUser(userId: string): Promise<{ email: string; name: string } | null> {
    if (!isUuid(userId)) return null;
    return this.deps.platform.prisma.user.findUnique({ where: { id: userId }, select: { email: true, name: true } });
  }

  /**
   * Creates a new account that belongs to the tenant from the start. An email that already has an
   * account is refused: attaching someone else's account (and showing its name) needs their
   * consent, which is what invitations are for.
   */
  async add(
    actor: MemberPrincipal,
    input: { email: string; name: string; password: string; role: MemberRole },
    requestId: string | null,
  ): Promise<MemberModel> {
    const email = parseEmail(input.email);
    assertMayGrant(actor, input.role);
    const name = parsePersonName(input.name);
    assertAcceptablePassword(input.password);
    const passwordHash = await this.deps.passwords.hash(input.password);
    const { prisma } = this.deps.platform;
    try {
      const user = await prisma.$transaction(async (tx) => {
        await assertPlatformQuotaRoom(tx, actor.tenant, 'MEMBERS');
        const created = await tx.user.create({
          data: { email, name, passwordHash, memberships: { create: { tenantId: actor.tenant.id, role: input.role } } },
        });
        await queueAudit(tx, actor.tenant.id, userActor(actor.userId, requestId), { action: 'member.added', targetType: 'Member', targetId: created.id, metadata: { role: input.role } });
        // The admin typed the address: unverified until its owner proves it with the emailed code.
        await this.deps.outbox.enqueue(tx, { template: 'email-verification', userId: created.id });
        return created;
      });
      this.deps.outbox.wake();
      return this.getMember(actor.tenant.id, user.id);
    } catch (error) {
      if (uniqueViolationFields(error)) {
        throw conflict('An account with this email already exists; invite it with inviteMember instead', 'email');
      }
      throw error;
    }
  }

  async changeRole(actor: MemberPrincipal, userId: string, role: MemberRole, requestId: string | null): Promise<MemberModel> {
    assertMayGrant(actor, role);
    const revokedKeys = await this.withOwnersLocked(actor, async (tx, owners) => {
      const target = await this.targetMembership(tx, actor, userId);
      if (target.role === 'OWNER' && role !== 'OWNER' && owners.length <= 1) {
        throw conflict('The last OWNER cannot be demoted; make someone else OWNER first', 'role');
      }
      await tx.membership.update({ where: { id: target.id }, data: { role } });
      const revoked = await this.withdrawGrants(tx, actor.tenant.id, userId, role);
      await queueAudit(tx, actor.tenant.id, userActor(actor.userId, requestId), {
        action: 'member.roleChanged',
        targetType: 'Member',
        targetId: userId,
        metadata: { from: target.role, to: role, keysRevoked: revoked.length },
      });
      return revoked;
    });
    this.deps.sessionCache.invalidateMembership(userId, actor.tenant.id);
    this.deps.apiKeys.forget(revokedKeys);
    return this.getMember(actor.tenant.id, userId);
  }

  async remove(actor: MemberPrincipal, userId: string, requestId: string | null): Promise<string> {
    const revokedKeys = await this.withOwnersLocked(actor, async (tx, owners) => {
      const target = await this.targetMembership(tx, actor, userId);
      if (target.role === 'OWNER' && owners.length <= 1) {
        throw conflict('The last OWNER cannot be removed', 'userId');
      }
      // The account before its sessions (see account-lock.ts); it also orders the deletion below
      // against an invitation being accepted at the same moment, which would give the account a
      // tenant again.
      await lockAccount(tx, { userId }, 'UPDATE');
      await tx.membership.delete({ where: { id: target.id } });
      await tx.session.updateMany({
        where: { userId, tenantId: actor.tenant.id, revokedAt: null },
        data: { revokedAt: new Date(), revokedReason: 'membership removed' },
      });
      // An account in no tenant can sign in nowhere, and its email could never be added again
      // (addMember refuses existing accounts): it goes.
      if ((await tx.membership.count({ where: { userId } })) === 0) await tx.user.delete({ where: { id: userId } });
      const revoked = await this.withdrawGrants(tx, actor.tenant.id, userId, null);
      await queueAudit(tx, actor.tenant.id, userActor(actor.userId, requestId), {
        action: 'member.removed',
        targetType: 'Member',
        targetId: userId,
        metadata: { role: target.role, keysRevoked: revoked.length },
      });
      return revoked;
    });
    this.deps.sessionCache.invalidateMembership(userId, actor.tenant.id);
    this.deps.apiKeys.forget(revokedKeys);
    return userId;
  }

  private async targetMembership(tx: PlatformTransaction, actor: MemberPrincipal, userId: string) {
    const target = isUuid(userId)
      ? await tx.membership.findUnique({ where: { userId_tenantId: { userId, tenantId: actor.tenant.id } } })
      : null;
    if (!target) throw notFound('Member');
    if (ROLE_RANK[target.role] > ROLE_RANK[actor.role]) throw forbidden(`A ${actor.role} cannot change a ${target.role}`);
    return target;
  }

  /**
   * Revokes the API keys and deletes the open invitations `userId` made in the tenant with a role
   * above `ceiling` (all of them when null: they left). Returns the revoked keys' prefixes, for
   * the key cache once committed.
   */
  private async withdrawGrants(tx: PlatformTransaction, tenantId: string, userId: string, ceiling: MemberRole | null): Promise<string[]> {
    const above = ceiling ? { in: rolesAbove(ceiling) } : undefined;
    await tx.invitation.deleteMany({ where: { tenantId, invitedByUserId: userId, role: above } });
    return this.deps.apiKeys.revokeCreatedBy(tx, { tenantId, userId, role: above });
  }

  /**
   * Runs `work` in a transaction holding row locks on the tenant's OWNER memberships, so two
   * concurrent demotions cannot each see "another owner remains" and leave none; every change
   * of members of one tenant takes them, so such changes run one at a time. The actor's own
   * membership is checked again under them (a demoted admin's request in flight changes nothing).
   */
  private async withOwnersLocked<T>(
    actor: MemberPrincipal,
    work: (tx: PlatformTransaction, owners: { id: string }[]) => Promise<T>,
  ): Promise<T> {
    return this.deps.platform.prisma.$transaction(async (tx) => {
      const owners = await tx.$queryRaw<{ id: string }[]>`
        SELECT "id" FROM platform."Membership" WHERE "tenantId" = ${actor.tenant.id}::uuid AND "role" = 'OWNER' FOR UPDATE`;
      await lockActorMembership(tx, actor);
      return work(tx, owners);
    });
  }

  private async getMember(tenantId: string, userId: string): Promise<MemberModel> {
    const membership = await this.deps.platform.prisma.membership.findUnique({
      where: { userId_tenantId: { userId, tenantId } },
      include: { user: true },
    });
    if (!membership) throw new AppError(ErrorCode.NOT_FOUND, 'Member not found');
    return {
      userId: membership.userId,
      email: membership.user.email,
      name: membership.user.name,
      role: membership.role,
      joinedAt: membership.createdAt,
    };
  }
}

