import { userActor } from '../audit/audit-entry';
import { queueAudit } from '../audit/audit-log';
import type { PlatformDatabase, PlatformTransaction } from '../database/platform-database';
import type { Invitation, TenantStatus } from '../generated/prisma/platform/client';
import { uniqueViolationFields } from '../database/prisma-errors';
import { isUuid } from '../database/uuid';
import { conflict, notFound } from '../errors/app-error';
import { assertPlatformQuotaRoom } from '../quotas/quota-guard';
import { assertMayGrant, lockActorMembership } from './member-service';
import { parseEmail, parsePersonName } from './person-input';
import { replacePassword } from './account-lock';
import { assertAcceptablePassword, type PasswordHasher } from './passwords';
import type { MemberPrincipal, MemberRole } from './principal';
import { assertTenantServes } from './session-service';
import { hashSecret, newSecret } from './secrets';
import type { SessionStateCache } from './session-state-cache';
import type { EmailOutbox } from '../email/email-jobs';

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

type OpenInvitation = Invitation & { tenant: { slug: string; status: TenantStatus } };


/**
 * Invitations let a tenant admin bring in a person, with an account elsewhere or none yet,
 * without learning anything about any account. An account's address may be unverified (an
 * admin can create an account for any address), so the email alone proves nothing: accepting
 * takes the invitation's code, which is emailed to that mailbox (the inviter never sees it), and
 * the account with that email (signed in, and its current password), which then gets a new
 * password; with no account yet, joining creates it. Either way the address is then verified.
 * See docs/decisions/0005-invitations.md and 0021-email.md.
 */
export class InvitationService {
  constructor(private readonly deps: { platform: PlatformDatabase; passwords: PasswordHasher; sessionCache: SessionStateCache; outbox: EmailOutbox }) {}

  /** Stores the offer and, in the same transaction, queues the email that carries its code to `email`. */
  async invite(actor: MemberPrincipal, input: { email: string; role: MemberRole }, requestId: string | null): Promise<{ invitation: InvitationModel }> {
    const email = parseEmail(input.email);
    assertMayGrant(actor, input.role);
    const { prisma } = this.deps.platform;
    // Membership of the caller's own tenant is no secret to its admins (they list members).
    const alreadyMember = await prisma.membership.findFirst({
      where: { tenantId: actor.tenant.id, user: { email } },
      select: { id: true },
    });
    if (alreadyMember) throw conflict('This email already belongs to a member of the tenant', 'email');
    const code = newSecret(INVITATION_CODE_PREFIX);
    const offer = {
      role: input.role,
      codeHash: hashSecret(code),
      invitedByUserId: actor.userId,
      createdAt: new Date(),
      expiresAt: new Date(Date.now() + INVITATION_TTL_MS),
    };
    const invitation = await prisma.$transaction(async (tx) => {
      // Demoting or removing the inviter voids their invitations above their new role: under
      // this lock, such a change either waits for this one and voids it, or is seen here.
      await lockActorMembership(tx, actor);
      // Expired offers are only history: each new one sweeps its tenant's, so they never pile up.
      await tx.invitation.deleteMany({ where: { tenantId: actor.tenant.id, expiresAt: { lte: new Date() } } });
      const offered = await tx.invitation.upsert({
        where: { tenantId_email: { tenantId: actor.tenant.id, email } },
        create: { tenantId: actor.tenant.id, email, ...offer },
        update: offer,
      });
      await queueAudit(tx, actor.tenant.id, userActor(actor.userId, requestId), { action: 'invitation.created', targetType: 'Invitation', targetId: offered.id, metadata: { role: input.role } });
      await this.deps.outbox.enqueue(tx, {
        template: 'invitation',
        invitationId: offered.id,
        to: email,
        tenantName: actor.tenant.name,
        role: input.role,
        code,
        expiresAt: offer.expiresAt.toISOString(),
      });
      return offered;
    });
    this.deps.outbox.wake();
    return { invitation: toInvitation(invitation) };
  }

  async listForTenant(tenantId: string): Promise<InvitationModel[]> {
    const invitations = await this.deps.platform.prisma.invitation.findMany({
      where: { tenantId, expiresAt: { gt: new Date() } },
      orderBy: { createdAt: 'asc' },
    });
    return invitations.map(toInvitation);
  }

  async revoke(actor: MemberPrincipal, id: string, requestId: string | null): Promise<string> {
    if (!isUuid(id)) throw notFound('Invitation');
    await this.deps.platform.prisma.$transaction(async (tx) => {
      const revoked = await tx.invitation.deleteMany({ where: { id, tenantId: actor.tenant.id } });
      if (revoked.count === 0) throw notFound('Invitation');
      await queueAudit(tx, actor.tenant.id, userActor(actor.userId, requestId), { action: 'invitation.revoked', targetType: 'Invitation', targetId: id });
    });
    return id;
  }

  /**
   * Turns the invitation whose code this is, addressed to the caller, into a membership, once,
   * and gives the account `newPassword`, signing out its other sessions: whoever knew the old
   * password (the admin who created the account, say) does not follow the person into this tenant.
   */
  async accept(
    actor: MemberPrincipal,
    input: { code: string; currentPassword: string; newPassword: string },
    requestId: string | null,
  ): Promise<{ tenantSlug: string; role: MemberRole; signedOutSessions: number }> {
    const { prisma } = this.deps.platform;
    const account = await prisma.user.findUnique({ where: { id: actor.userId }, select: { email: true, passwordHash: true } });
    if (!account) throw notFound('Account');
    const invitation = await this.findOpen(input.code, account.email);
    const newHash = await this.deps.passwords.hashChange(account.passwordHash, input);
    const signedOut = await prisma.$transaction(async (tx) => {
      // The account first, as removeMember takes it: waiting on a removal that deletes the
      // account, we then find none (NOT_FOUND) instead of inserting a membership for a deleted
      // user; holding it, removal sees the new membership.
      const others = await replacePassword(
        tx,
        { account: { userId: actor.userId }, sessionId: actor.sessionId },
        { checkedHash: account.passwordHash, newHash, reason: 'password set on accepting an invitation', accountGone: () => notFound('Account') },
      );
      await this.consume(tx, invitation);
      await this.assertRoomForMember(tx, invitation.tenantId);
      // The code came through this address: it is the account's.
      await tx.user.updateMany({ where: { id: actor.userId, emailVerifiedAt: null }, data: { emailVerifiedAt: new Date() } });
      try {
        await tx.membership.create({ data: { userId: actor.userId, tenantId: invitation.tenantId, role: invitation.role } });
      } catch (error) {
        if (uniqueViolationFields(error)) throw conflict('You are already a member of this tenant', 'code');
        throw error;
      }
      await queueAudit(tx, invitation.tenantId, userActor(actor.userId, requestId), {
        action: 'invitation.accepted',
        targetType: 'Member',
        targetId: actor.userId,
        metadata: { invitationId: invitation.id, role: invitation.role },
      });
      return others;
    });
    for (const sessionId of signedOut) this.deps.sessionCache.invalidateSession(sessionId);
    return { tenantSlug: invitation.tenant.slug, role: invitation.role, signedOutSessions: signedOut.length };
  }

  /**
   * Creates the account an invitation is addressed to, with the password its holder chooses,
   * as a member of the inviting tenant; the code is the proof of the mailbox. An email that
   * already has an account is refused: its holder signs in and accepts instead.
   */
  async join(input: { code: string; name: string; password: string }, requestId: string | null): Promise<{ tenantSlug: string; email: string }> {
    const name = parsePersonName(input.name);
    assertAcceptablePassword(input.password);
    const { prisma } = this.deps.platform;
    const invitation = await this.findOpen(input.code);
    const hasAccount = () => conflict('This email already has an account: sign in with it and call acceptInvitation', 'code');
    if (await prisma.user.findUnique({ where: { email: invitation.email }, select: { id: true } })) throw hasAccount();
    const passwordHash = await this.deps.passwords.hash(input.password);
    try {
      await prisma.$transaction(async (tx) => {
        await this.consume(tx, invitation);
        await this.assertRoomForMember(tx, invitation.tenantId);
        const user = await tx.user.create({
          data: { email: invitation.email, name, passwordHash, emailVerifiedAt: new Date(), memberships: { create: { tenantId: invitation.tenantId, role: invitation.role } } },
        });
        await queueAudit(tx, invitation.tenantId, userActor(user.id, requestId), {
          action: 'invitation.joined',
          targetType: 'Member',
          targetId: user.id,
          metadata: { invitationId: invitation.id, role: invitation.role },
        });
      });
    } catch (error) {
      if (uniqueViolationFields(error)) throw hasAccount();
      throw error;
    }
    return { tenantSlug: invitation.tenant.slug, email: invitation.email };
  }

  /** Turns down the invitation whose code this is, addressed to the caller; returns its id. */
  async decline(actor: MemberPrincipal, code: string, requestId: string | null): Promise<string> {
    const email = await this.emailOf(actor);
    const { prisma } = this.deps.platform;
    const codeHash = hashSecret(code);
    const invitation = await prisma.invitation.findFirst({ where: { codeHash, email }, select: { id: true, tenantId: true } });
    if (!invitation) throw notFound('Invitation');
    await prisma.$transaction(async (tx) => {
      if ((await tx.invitation.deleteMany({ where: { id: invitation.id, codeHash } })).count === 0) throw notFound('Invitation');
      await queueAudit(tx, invitation.tenantId, userActor(actor.userId, requestId), { action: 'invitation.declined', targetType: 'Invitation', targetId: invitation.id });
    });
    return invitation.id;
  }

  /** The unexpired invitation with this code (addressed to `email`, if given) of a tenant that serves. */
  private async findOpen(code: string, email?: string): Promise<OpenInvitation> {
    const invitation = await this.deps.platform.prisma.invitation.findFirst({
      where: { codeHash: hashSecret(code), ...(email === undefined ? {} : { email }), expiresAt: { gt: new Date() } },
      include: { tenant: { select: { slug: true, status: true } } },
    });
    if (!invitation) throw notFound('Invitation');
    // Before the code is spent: refused now, it still works once the tenant is reactivated.
    assertTenantServes(invitation.tenant);
    return invitation;
  }

  /**
   * Deletes the invitation, matching its code too: inviting the same email again rewrites the row
   * with a new code (and maybe another role), and a call holding the old code must not take that.
   * Deleting first also makes two concurrent takers serialise on the row: the second deletes nothing.
   */
  private async consume(tx: PlatformTransaction, invitation: OpenInvitation): Promise<void> {
    const { count } = await tx.invitation.deleteMany({ where: { id: invitation.id, codeHash: invitation.codeHash, expiresAt: { gt: new Date() } } });
    if (count === 0) throw notFound('Invitation');
    // Again under a share lock: a suspension that landed since findOpen waits for this or rolls it back.
    const [tenant] = await tx.$queryRaw<{ slug: string; status: TenantStatus }[]>`
      SELECT "slug", "status" FROM platform."Tenant" WHERE "id" = ${invitation.tenantId}::uuid FOR SHARE`;
    if (!tenant) throw notFound('Invitation');
    assertTenantServes(tenant);
  }

  /**
   * QUOTA_EXCEEDED when the inviting tenant already holds its plan's members. Checked when the
   * invitation turns into a membership, not when it is sent: invitations hold no place, and the
   * tenant may have made room by then. The invitation stays spent only if this passes (a refusal
   * rolls the transaction back).
   */
  private async assertRoomForMember(tx: PlatformTransaction, tenantId: string): Promise<void> {
    const tenant = await tx.tenant.findUniqueOrThrow({ where: { id: tenantId }, select: { id: true, plan: true, quotaOverrides: true } });
    await assertPlatformQuotaRoom(tx, tenant, 'MEMBERS');
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
