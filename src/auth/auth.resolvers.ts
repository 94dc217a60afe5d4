import { AppError, ErrorCode } from '../errors/app-error';
import type { Resolvers } from '../generated/graphql';
import { isTenantPrincipal } from './principal';
import { listMemberships } from './tenant-switch';
import { memberPrincipal, type RequestContext } from '../graphql/context';

export const authResolvers: Resolvers = {
  Query: {
    me: (_root, _args, ctx) => ctx.principal,
    members: (_root, { orderBy }, ctx) => ctx.services.members.list(ctx.tenantScope().principal.tenant.id, orderBy),
    // Platform rows of the caller's own tenant: no tenant connection to lease.
    membersConnection: (_root, args, ctx) => ctx.services.members.page(memberPrincipal(ctx).tenant.id, args),
    invitations: (_root, _args, ctx) => ctx.services.invitations.listForTenant(memberPrincipal(ctx).tenant.id),
  },
  Mutation: {
    login: (_root, { input }, ctx) => ctx.services.sessions.login(input),
    adminLogin: (_root, { email, password }, ctx) => ctx.services.sessions.adminLogin({ email, password }),
    refreshToken: (_root, { token }, ctx) => ctx.services.sessions.refresh(token),
    logout: async (_root, _args, ctx) => {
      const { principal } = ctx;
      if (principal.kind === 'anonymous') throw new AppError(ErrorCode.UNAUTHENTICATED, 'Not signed in');
      if (principal.kind === 'apiKey') throw new AppError(ErrorCode.FORBIDDEN, 'API keys have no session; revoke the key instead');
      await ctx.services.sessions.logout(principal.sessionId);
      return { success: true };
    },
    changePassword: async (_root, { input }, ctx) => {
      const { principal } = ctx;
      if (principal.kind === 'anonymous') throw new AppError(ErrorCode.UNAUTHENTICATED, 'Not signed in');
      if (principal.kind === 'apiKey') throw new AppError(ErrorCode.FORBIDDEN, 'API keys have no password');
      const who =
        principal.kind === 'member'
          ? { userId: principal.userId, sessionId: principal.sessionId }
          : { adminId: principal.adminId, sessionId: principal.sessionId };
      return { signedOutSessions: await ctx.services.sessions.changePassword(who, input) };
    },
    switchTenant: (_root, { tenant }, ctx) => ctx.services.sessions.switchTenant(memberPrincipal(ctx), tenant),
    addMember: async (_root, { input }, ctx) => ({ member: await ctx.services.members.add(memberPrincipal(ctx), input, ctx.requestId) }),
    updateMemberRole: async (_root, { userId, role }, ctx) => ({
      member: await ctx.services.members.changeRole(memberPrincipal(ctx), userId, role, ctx.requestId),
    }),
    removeMember: async (_root, { userId }, ctx) => ({
      removedUserId: await ctx.services.members.remove(memberPrincipal(ctx), userId, ctx.requestId),
    }),
    inviteMember: (_root, { input }, ctx) => ctx.services.invitations.invite(memberPrincipal(ctx), input, ctx.requestId),
    revokeInvitation: async (_root, { id }, ctx) => ({
      revokedId: await ctx.services.invitations.revoke(memberPrincipal(ctx), id, ctx.requestId),
    }),
    acceptInvitation: (_root, { input }, ctx) => ctx.services.invitations.accept(memberPrincipal(ctx), input, ctx.requestId),
    joinByInvitation: async (_root, { input }, ctx) => {
      const joined = await ctx.services.invitations.join(input, ctx.requestId);
      // The ordinary sign-in, so the session is exactly what `login` would have started.
      return ctx.services.sessions.login({ tenant: joined.tenantSlug, email: joined.email, password: input.password });
    },
    requestPasswordReset: async (_root, { email }, ctx) => {
      await ctx.services.accountEmails.requestPasswordReset(email);
      return { accepted: true };
    },
    resetPassword: (_root, { input }, ctx) => ctx.services.accountEmails.resetPassword(input),
    verifyEmail: async (_root, { code }, ctx) => {
      await ctx.services.accountEmails.verifyEmail(memberPrincipal(ctx), code);
      return { emailVerified: true };
    },
    sendEmailVerification: async (_root, _args, ctx) => ({ sent: await ctx.services.accountEmails.sendEmailVerification(memberPrincipal(ctx)) }),
    declineInvitation: async (_root, { code }, ctx) => ({
      declinedId: await ctx.services.invitations.decline(memberPrincipal(ctx), code, ctx.requestId),
    }),
  },
  Viewer: {
    id: (principal) => {
      if (principal.kind === 'platformAdmin') return principal.adminId;
      if (principal.kind === 'member') return principal.userId;
      return principal.kind === 'apiKey' ? principal.keyId : '';
    },
    kind: (principal) => (principal.kind === 'platformAdmin' ? 'PLATFORM_ADMIN' : principal.kind === 'apiKey' ? 'API_KEY' : 'TENANT_MEMBER'),
    email: async (principal, _args, ctx) => (principal.kind === 'apiKey' ? null : (await viewerAccount(principal, ctx)).email),
    name: async (principal, _args, ctx) => (principal.kind === 'apiKey' ? principal.name : (await viewerAccount(principal, ctx)).name),
    emailVerified: async (principal, _args, ctx) => {
      if (principal.kind !== 'member') return null;
      const user = await ctx.services.platform.prisma.user.findUnique({ where: { id: principal.userId }, select: { emailVerifiedAt: true } });
      return user ? user.emailVerifiedAt !== null : null;
    },
    role: (principal) => (isTenantPrincipal(principal) ? principal.role : null),
    tenant: (principal) => (isTenantPrincipal(principal) ? principal.tenant : null),
    memberships: (principal, { first, after }, ctx) =>
      principal.kind === 'member' ? listMemberships(ctx.services.platform, principal, { first, after }) : null,
  },
  Member: {
    id: (member) => member.userId,
  },
};

async function viewerAccount(
  principal: RequestContext['principal'],
  ctx: RequestContext,
): Promise<{ email: string; name: string }> {
  const { prisma } = ctx.services.platform;
  const account =
    principal.kind === 'platformAdmin'
      ? await prisma.platformAdmin.findUnique({ where: { id: principal.adminId }, select: { email: true, name: true } })
      : principal.kind === 'member'
        ? await ctx.services.members.findUser(principal.userId)
        : null;
  if (!account) throw new AppError(ErrorCode.UNAUTHENTICATED, 'Account no longer exists');
  return account;
}
