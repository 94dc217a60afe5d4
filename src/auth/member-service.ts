import { z } from 'zod';
import type { PlatformDatabase, PlatformTransaction } from '../database/platform-database';
import { AppError, ErrorCode, assertNoNul, badInput, conflict, forbidden, notFound } from '../errors/app-error';
import type { PasswordHasher } from './passwords';
import { lockAccount } from './account-lock';
import { assertAcceptablePassword } from './passwords';
import type { SessionStateCache } from './session-state-cache';
import { ROLE_RANK, type MemberPrincipal, type MemberRole } from './principal';
import { isUuid } from '../database/uuid';
import { uniqueViolationFields } from '../database/prisma-errors';

export interface MemberModel {
  userId: string;
  email: string;
  name: string;
  role: MemberRole;
  joinedAt: Date;
}

const emailSchema = z.string().trim().toLowerCase().pipe(z.email());

/** The normalised (trimmed, lower-case) address, or BAD_USER_INPUT on `field`. */
export function parseEmail(value: string, field = 'email'): string {
  const email = emailSchema.safeParse(value);
  if (!email.success) throw badInput('email is not a valid email address', field);
  return email.data;
}

/** You can grant roles up to your own, never above it. */
export function assertMayGrant(actor: MemberPrincipal, role: MemberRole): void {
  if (ROLE_RANK[role] > ROLE_RANK[actor.role]) throw forbidden(`A ${actor.role} cannot grant the ${role} role`);
}

/**
 * Membership management inside the caller's own tenant. Rules: you can only grant roles up to
 * your own and only change members ranked at most like you (so only an OWNER touches OWNERs),
 * and a tenant always keeps at least one OWNER.
 */
export class MemberService {
  constructor(
    private readonly deps: { platform: PlatformDatabase; passwords: PasswordHasher; sessionCache: SessionStateCache },
  ) {}

  async list(tenantId: string): Promise<MemberModel[]> {
    const memberships = await this.deps.platform.prisma.membership.findMany({
      where: { tenantId },
      include: { user: true },
      orderBy: { createdAt: 'asc' },
    });
    return memberships.map((membership) => ({
      userId: membership.userId,
      email: membership.user.email,
      name: membership.user.name,
      role: membership.role,
      joinedAt: membership.createdAt,
    }));
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
  ): Promise<MemberModel> {
    const email = parseEmail(input.email);
    assertMayGrant(actor, input.role);
    const name = input.name.trim();
    if (!name) throw badInput('name must not be empty', 'name');
    assertNoNul(name, 'name');
    assertAcceptablePassword(input.password);
    const passwordHash = await this.deps.passwords.hash(input.password);
    const { prisma } = this.deps.platform;
    try {
      const user = await prisma.user.create({
        data: { email, name, passwordHash, memberships: { create: { tenantId: actor.tenant.id, role: input.role } } },
      });
      return this.getMember(actor.tenant.id, user.id);
    } catch (error) {
      if (uniqueViolationFields(error)) {
        throw conflict('An account with this email already exists; invite it with inviteMember instead', 'email');
      }
      throw error;
    }
  }

  async changeRole(actor: MemberPrincipal, userId: string, role: MemberRole): Promise<MemberModel> {
    assertMayGrant(actor, role);
    await this.withOwnersLocked(actor.tenant.id, async (tx, owners) => {
      const target = await this.targetMembership(tx, actor, userId);
      if (target.role === 'OWNER' && role !== 'OWNER' && owners.length <= 1) {
        throw conflict('The last OWNER cannot be demoted; make someone else OWNER first', 'role');
      }
      await tx.membership.update({ where: { id: target.id }, data: { role } });
    });
    this.deps.sessionCache.invalidateMembership(userId, actor.tenant.id);
    return this.getMember(actor.tenant.id, userId);
  }

  async remove(actor: MemberPrincipal, userId: string): Promise<string> {
    await this.withOwnersLocked(actor.tenant.id, async (tx, owners) => {
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
    });
    this.deps.sessionCache.invalidateMembership(userId, actor.tenant.id);
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
   * Runs `work` in a transaction holding row locks on the tenant's OWNER memberships, so two
   * concurrent demotions cannot each see "another owner remains" and leave none.
   */
  private async withOwnersLocked(
    tenantId: string,
    work: (tx: PlatformTransaction, owners: { id: string }[]) => Promise<void>,
  ): Promise<void> {
    await this.deps.platform.prisma.$transaction(async (tx) => {
      const owners = await tx.$queryRaw<{ id: string }[]>`
        SELECT "id" FROM platform."Membership" WHERE "tenantId" = ${tenantId}::uuid AND "role" = 'OWNER' FOR UPDATE`;
      await work(tx, owners);
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

