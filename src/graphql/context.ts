import type { AuthPayload } from '../auth/session-service';
import type { MemberService } from '../auth/member-service';
import type { Principal, TenantPrincipal } from '../auth/principal';
import type { SessionService } from '../auth/session-service';
import type { PlatformDatabase } from '../database/platform-database';
import { AppError, ErrorCode } from '../errors/app-error';
import { createFleetLoaders } from '../fleet/fleet-loaders';
import type { FleetScope } from '../fleet/vehicles';
import type { Logger } from '../observability/logger';
import type { TenantLifecycle } from '../provisioning/tenant-lifecycle';
import type { TenantMigrationRunner } from '../provisioning/tenant-migration-runner';
import type { TenantProvisioner } from '../provisioning/tenant-provisioner';
import type { TenantClientPool } from '../tenancy/tenant-client-pool';
import type { TenantDirectory } from '../tenancy/tenant-directory';

export type { AuthPayload };

/** The application services resolvers call; built once per server. */
export interface Services {
  platform: PlatformDatabase;
  directory: TenantDirectory;
  tenantClients: TenantClientPool;
  sessions: SessionService;
  members: MemberService;
  provisioner: TenantProvisioner;
  migrations: TenantMigrationRunner;
  lifecycle: TenantLifecycle;
}

/** What a tenant-scoped resolver works with: its tenant's client and this request's loaders. */
export interface TenantScope extends FleetScope {
  principal: TenantPrincipal;
}

export interface RequestContext {
  requestId: string;
  principal: Principal;
  services: Services;
  logger: Logger;
  /** The caller's tenant-bound client and loaders, leased on first use. */
  tenantScope(): TenantScope;
  /** Returns the lease; called once the response is sent. */
  release(): void;
}

export function createRequestContext(options: {
  requestId: string;
  principal: Principal;
  services: Services;
  logger: Logger;
}): RequestContext {
  const { principal, services } = options;
  let scope: TenantScope | undefined;
  let releaseLease: (() => void) | undefined;
  return {
    ...options,
    tenantScope() {
      if (scope) return scope;
      if (principal.kind !== 'member') {
        throw new AppError(ErrorCode.FORBIDDEN, 'This operation acts on a tenant; sign in as a member of that tenant');
      }
      const lease = services.tenantClients.lease(principal.tenant);
      releaseLease = lease.release;
      scope = { principal, db: lease.db, loaders: createFleetLoaders(lease.db) };
      return scope;
    },
    release() {
      releaseLease?.();
      releaseLease = undefined;
    },
  };
}
