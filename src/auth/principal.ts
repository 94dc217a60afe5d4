import type { MemberRole } from '../generated/prisma/platform/client';
import type { TenantRecord } from '../tenancy/tenant-directory';

export type { MemberRole };

/** Higher outranks lower: OWNER > ADMIN > MANAGER > MEMBER > VIEWER. */
export const ROLE_RANK: Record<MemberRole, number> = { VIEWER: 1, MEMBER: 2, MANAGER: 3, ADMIN: 4, OWNER: 5 };

export function roleAtLeast(role: MemberRole, required: MemberRole): boolean {
  return ROLE_RANK[role] >= ROLE_RANK[required];
}

/** Who is calling. Resolved once per request by the context factory. */
export type Principal =
  | { kind: 'anonymous' }
  | { kind: 'platformAdmin'; adminId: string; sessionId: string }
  | { kind: 'member'; userId: string; sessionId: string; tenant: TenantRecord; role: MemberRole };

export type TenantPrincipal = Extract<Principal, { kind: 'member' }>;

export function isTenantPrincipal(principal: Principal): principal is TenantPrincipal {
  return principal.kind === 'member';
}
