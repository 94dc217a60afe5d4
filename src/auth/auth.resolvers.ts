import { AppError, ErrorCode } from '../errors/app-error';
import type { Resolvers } from '../generated/graphql';
import type { RequestContext } from '../graphql/context';
import type { TenantPrincipal } from './principal';

function tenantPrincipal(ctx: RequestContext): TenantPrincipal {
  return ctx.tenantScope().principal;
}

export const authResolvers: Resolvers = {
  Query: {
    me: (_root, _args, ctx) => ctx.principal,
    members: (_root, _args, ctx) => ctx.services.members.list(tenantPrincipal(ctx)),
  },
  Mutation: {
    login: (_root, { input }, ctx) => ctx.services.sessions.login(input),
    adminLogin: (_root, { email, password }, ctx) => ctx.services.sessions.adminLogin({ email, password }),
    refreshToken: (_root, { token }, ctx) => ctx.services.sessions.refresh(token),
    logout: async (_root, _args, ctx) => {
      const { principal } = ctx;
      if (principal.kind === 'anonymous') throw new AppError(ErrorCode.UNAUTHENTICATED, 'Not signed in');
      await ctx.services.sessions.logout(principal.sessionId);
      return { success: true };
    },
    addMember: async (_root, { input }, ctx) => ({ member: await ctx.services.members.add(tenantPrincipal(ctx), input) }),
    updateMemberRole: async (_root, { userId, role }, ctx) => ({
      member: await ctx.services.members.changeRole(tenantPrincipal(ctx), userId, role),
    }),
    removeMember: async (_root, { userId }, ctx) => ({
      removedUserId: await ctx.services.members.remove(tenantPrincipal(ctx), userId),
    }),
  },
  Viewer: {
    id: (principal) => (principal.kind === 'platformAdmin' ? principal.adminId : principal.kind === 'member' ? principal.userId : ''),
    kind: (principal) => (principal.kind === 'platformAdmin' ? 'PLATFORM_ADMIN' : 'TENANT_MEMBER'),
    email: async (principal, _args, ctx) => (await viewerAccount(principal, ctx)).email,
    name: async (principal, _args, ctx) => (await viewerAccount(principal, ctx)).name,
    role: (principal) => (principal.kind === 'member' ? principal.role : null),
    tenant: (principal) => (principal.kind === 'member' ? principal.tenant : null),
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
