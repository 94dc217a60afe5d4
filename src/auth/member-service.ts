import { z } from 'zod';
import type { PlatformDatabase } from '../database/platform-database';
import { AppError, ErrorCode, badInput, conflict, forbidden, notFound } from '../errors/app-error';
import type { PasswordHasher } from './passwords';
import { assertAcceptablePassword } from './passwords';
import type { SessionStateCache } from './session-state-cache';
import { ROLE_RANK, type MemberPrincipal, type MemberRole } from './principal';
import { isUuid } from '../database/uuid';

export interface MemberModel {
  userId: string;
  email: string;
  name: string;
  role: MemberRole;
  joinedAt: Date;
}

const emailSchema = z.string().trim().toLowerCase().pipe(z.email());

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

  async add(
    actor: MemberPrincipal,
    input: { email: string; name?: string | null; password?: string | null; role: MemberRole },
  ): Promise<MemberModel> {
    const email = emailSchema.safeParse(input.email);
    if (!email.success) throw badInput('email is not a valid email address', 'email');
    this.assertMayGrant(actor, input.role);
    const { prisma } = this.deps.platform;
    const existing = await prisma.user.findUnique({ where: { email: email.data } });
    let userId: string;
    if (existing) {
      // Never checked against the user's password: that would let any tenant admin test
      // guesses for the accounts of people in other tenants, outside login's per-email limit.
      if (input.password) {
        throw conflict('A user with this email already exists and keeps their own password; leave password out to add them', 'password');
      }
      userId = existing.id;
    } else {
      const name = input.name?.trim();
      if (!name) throw badInput('name is required for a new user', 'name');
      if (name.includes('\u0000')) throw badInput('name must not contain NUL characters', 'name');
      if (!input.password) throw badInput('password is required for a new user', 'password');
      assertAcceptablePassword(input.password);
      const passwordHash = await this.deps.passwords.hash(input.password);
      const created = await prisma.user.upsert({
        where: { email: email.data },
        create: { email: email.data, name, passwordHash },
        update: {},
      });
      userId = created.id;
    }
    try {
      await prisma.membership.create({ data: { userId, tenantId: actor.tenant.id, role: input.role } });
    } catch (error) {
      if ((error as { code?: string }).code === 'P2002') throw conflict('This user is already a member of the tenant', 'email');
      throw error;
    }
    return this.getMember(actor.tenant.id, userId);
  }

  async changeRole(actor: MemberPrincipal, userId: string, role: MemberRole): Promise<MemberModel> {
    this.assertMayGrant(actor, role);
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
      await tx.membership.delete({ where: { id: target.id } });
      await tx.session.updateMany({
        where: { userId, tenantId: actor.tenant.id, revokedAt: null },
        data: { revokedAt: new Date(), revokedReason: 'membership removed' },
      });
    });
    this.deps.sessionCache.invalidateMembership(userId, actor.tenant.id);
    return userId;
  }

  private assertMayGrant(actor: MemberPrincipal, role: MemberRole): void {
    if (ROLE_RANK[role] > ROLE_RANK[actor.role]) throw forbidden(`A ${actor.role} cannot grant the ${role} role`);
  }

  private async targetMembership(tx: Transaction, actor: MemberPrincipal, userId: string) {
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
    work: (tx: Transaction, owners: { id: string }[]) => Promise<void>,
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

type Transaction = Parameters<Parameters<PlatformDatabase['prisma']['$transaction']>[0]>[0];
