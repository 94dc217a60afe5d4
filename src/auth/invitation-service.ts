import { createHash, randomBytes } from 'node:crypto';
import type { PlatformDatabase } from '../database/platform-database';
import { uniqueViolationFields } from '../database/prisma-errors';
import { isUuid } from '../database/uuid';
import { assertNoNul, badInput, conflict, forbidden, notFound } from '../errors/app-error';
import { assertMayGrant, parseEmail } from './member-service';
import { assertAcceptablePassword, type PasswordHasher } from './passwords';
import type { MemberPrincipal, MemberRole } from './principal';

export interface InvitationModel {
  id: string;
  email: string;
  role: MemberRole;
  invitedAt: Date;
  expiresAt: Date;
}

/** How long an offer stays open; inviting again renews it. */
export const INVITATION_TTL_MS = 7 * 24 * 60 * 60 * 1000;

const INVITATION_CODE_PREFIX = 'inv_';

const hashCode = (code: string) => createHash('sha256').update(code).digest('hex');

/**
 * Invitations let a tenant admin bring in a person, with an account elsewhere or none yet,
 * without learning anything about any account. Email addresses are not verified (an
 * admin can create an account for any address), so the email alone proves nothing: accepting
 * takes the invitation's code, which the inviter delivers to that mailbox, and a session of the
 * account with that email whose password its holder chose (or, with no account yet, a password
 * chosen on joining). See docs/decisions/0005-invitations.md.
 */
export class InvitationService {
  constructor(private readonly deps: { platform: PlatformDatabase; passwords: PasswordHasher }) {}

  async invite(actor: MemberPrincipal, input: { email: string; role: MemberRole }): Promise<{ invitation: InvitationModel; code: string }> {
    const email = parseEmail(input.email);
    assertMayGrant(actor, input.role);
    const { prisma } = this.deps.platform;
    // Membership of the caller's own tenant is no secret to its admins (they list members).
    const alreadyMember = await prisma.membership.findFirst({
      where: { tenantId: actor.tenant.id, user: { email } },
      select: { id: true },
    });
    if (alreadyMember) throw conflict('This email already belongs to a member of the tenant', 'email');
    const code = `${INVITATION_CODE_PREFIX}${randomBytes(32).toString('base64url')}`;
    const offer = {
      role: input.role,
      codeHash: hashCode(code),
      invitedByUserId: actor.userId,
      createdAt: new Date(),
      expiresAt: new Date(Date.now() + INVITATION_TTL_MS),
    };
    // Expired offers are only history: each new one sweeps its tenant's, so they never pile up.
    await prisma.invitation.deleteMany({ where: { tenantId: actor.tenant.id, expiresAt: { lte: new Date() } } });
    const invitation = await prisma.invitation.upsert({
      where: { tenantId_email: { tenantId: actor.tenant.id, email } },
      create: { tenantId: actor.tenant.id, email, ...offer },
      update: offer,
    });
    return { invitation: toInvitation(invitation), code };
  }

  async listForTenant(tenantId: string): Promise<InvitationModel[]> {
    const invitations = await this.deps.platform.prisma.invitation.findMany({
      where: { tenantId, expiresAt: { gt: new Date() } },
      orderBy: { createdAt: 'asc' },
    });
    return invitations.map(toInvitation);
  }

  async revoke(actor: MemberPrincipal, id: string): Promise<string> {
    const revoked = isUuid(id)
      ? await this.deps.platform.prisma.invitation.deleteMany({ where: { id, tenantId: actor.tenant.id } })
      : { count: 0 };
    if (revoked.count === 0) throw notFound('Invitation');
    return id;
  }

  /** Turns the invitation whose code this is, addressed to the caller, into a membership, once. */
  async accept(actor: MemberPrincipal, code: string): Promise<{ tenantSlug: string; role: MemberRole }> {
    return this.deps.platform.prisma.$transaction(async (tx) => {
      // The share lock orders this against removeMember deleting the account with its last
      // membership: waiting for it, we then find no account (NOT_FOUND) instead of inserting a
      // membership for a deleted user; holding it, removal sees the new membership and keeps the account.
      const [account] = await tx.$queryRaw<{ email: string; passwordChosenAt: Date | null }[]>`
        SELECT "email", "passwordChosenAt" FROM platform."User" WHERE "id" = ${actor.userId}::uuid FOR SHARE`;
      if (!account) throw notFound('Account');
      const invitation = await tx.invitation.findFirst({
        where: { codeHash: hashCode(code), email: account.email, expiresAt: { gt: new Date() } },
        include: { tenant: { select: { slug: true } } },
      });
      if (!invitation) throw notFound('Invitation');
      if (!account.passwordChosenAt) {
        throw forbidden('Choose your own password with changePassword first: an administrator set the current one, and knows it');
      }
      // Deleting first makes two concurrent accepts serialise on the row: the second deletes nothing.
      const { count } = await tx.invitation.deleteMany({ where: { id: invitation.id } });
      if (count === 0) throw notFound('Invitation');
      try {
        await tx.membership.create({ data: { userId: actor.userId, tenantId: invitation.tenantId, role: invitation.role } });
      } catch (error) {
        if (uniqueViolationFields(error)) throw conflict('You are already a member of this tenant', 'code');
        throw error;
      }
      return { tenantSlug: invitation.tenant.slug, role: invitation.role };
    });
  }

  /**
   * Creates the account an invitation is addressed to, with the password its holder chooses,
   * as a member of the inviting tenant; the code is the proof of the mailbox. An email that
   * already has an account is refused: its holder signs in and accepts instead.
   */
  async join(input: { code: string; name: string; password: string }): Promise<{ tenantSlug: string; email: string }> {
    const name = input.name.trim();
    if (!name || name.length > 200) throw badInput('name must be 1 to 200 characters', 'name');
    assertNoNul(name, 'name');
    assertAcceptablePassword(input.password);
    const { prisma } = this.deps.platform;
    const invitation = await prisma.invitation.findFirst({
      where: { codeHash: hashCode(input.code), expiresAt: { gt: new Date() } },
      include: { tenant: { select: { slug: true } } },
    });
    if (!invitation) throw notFound('Invitation');
    const hasAccount = () => conflict('This email already has an account: sign in with it and call acceptInvitation', 'code');
    if (await prisma.user.findUnique({ where: { email: invitation.email }, select: { id: true } })) throw hasAccount();
    const passwordHash = await this.deps.passwords.hash(input.password);
    try {
      await prisma.$transaction(async (tx) => {
        // Deleting first makes two concurrent joins (or a join and an accept) serialise on the row.
        const { count } = await tx.invitation.deleteMany({ where: { id: invitation.id } });
        if (count === 0) throw notFound('Invitation');
        await tx.user.create({
          data: {
            email: invitation.email,
            name,
            passwordHash,
            passwordChosenAt: new Date(),
            memberships: { create: { tenantId: invitation.tenantId, role: invitation.role } },
          },
        });
      });
    } catch (error) {
      if (uniqueViolationFields(error)) throw hasAccount();
      throw error;
    }
    return { tenantSlug: invitation.tenant.slug, email: invitation.email };
  }

  /** Turns down the invitation whose code this is, addressed to the caller; returns its id. */
  async decline(actor: MemberPrincipal, code: string): Promise<string> {
    const email = await this.emailOf(actor);
    const { prisma } = this.deps.platform;
    const invitation = await prisma.invitation.findFirst({ where: { codeHash: hashCode(code), email }, select: { id: true } });
    if (!invitation || (await prisma.invitation.deleteMany({ where: { id: invitation.id } })).count === 0) throw notFound('Invitation');
    return invitation.id;
  }

  private async emailOf(actor: MemberPrincipal): Promise<string> {
    const user = await this.deps.platform.prisma.user.findUnique({ where: { id: actor.userId }, select: { email: true } });
    if (!user) throw notFound('Account');
    return user.email;
  }
}

function toInvitation(row: { id: string; email: string; role: MemberRole; createdAt: Date; expiresAt: Date }): InvitationModel {
  return { id: row.id, email: row.email, role: row.role, invitedAt: row.createdAt, expiresAt: row.expiresAt };
}
