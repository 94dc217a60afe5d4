import type { MemberRole } from '../generated/prisma/platform/client';
import type { TenantRecord } from '../tenancy/tenant-directory';

export type { MemberRole };

/** Higher outranks lower: OWNER > ADMIN > MANAGER > MEMBER > VIEWER. */
export const ROLE_RANK: Record<MemberRole, number> = { VIEWER: 1, MEMBER: 2, MANAGER: 3, ADMIN: 4, OWNER: 5 };

/** The roles that outrank `role`. */
export function rolesAbove(role: MemberRole): MemberRole[] {
  return (Object.keys(ROLE_RANK) as MemberRole[]).filter((other) => ROLE_RANK[other] > ROLE_RANK[role]);
}

export function roleAtLeast(role: MemberRole, required: MemberRole): boolean {
  return ROLE_RANK[role] >= ROLE_RANK[required];
}

export interface MemberPrincipal {
  kind: 'member';
  userId: string;
  sessionId: string;
  tenant: TenantRecord;
  role: MemberRole;
}

/** A partner's API key: bound to one tenant, acting with at most `role`. */
export interface ApiKeyPrincipal {
  kind: 'apiKey';
  keyId: string;
  name: string;
  tenant: TenantRecord;
  role: MemberRole;
  /** Only registered operations may run. */
  persistedOnly: boolean;
}

/** Who is calling. Resolved once per request, before anything is parsed. */
export type Principal =
  | { kind: 'anonymous' }
  | { kind: 'platformAdmin'; adminId: string; sessionId: string }
  | MemberPrincipal
  | ApiKeyPrincipal;

/** A caller acting inside one tenant. */
export type TenantPrincipal = MemberPrincipal | ApiKeyPrincipal;

export function isTenantPrincipal(principal: Principal): principal is TenantPrincipal {
  return principal.kind === 'member' || principal.kind === 'apiKey';
}

/** Stable id of the caller inside its tenant, for per-principal rate limits. */
export function principalKey(principal: TenantPrincipal): string {
  return principal.kind === 'member' ? `user:${principal.userId}` : `key:${principal.keyId}`;
}
