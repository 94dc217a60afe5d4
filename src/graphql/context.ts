import type { AuthPayload } from '../auth/session-service';
import type { Mailer } from '../email/mailer';
import type { AccountEmailService } from '../auth/account-email-service';
import type { InvitationService } from '../auth/invitation-service';
import type { MemberService } from '../auth/member-service';
import { isTenantPrincipal, type MemberPrincipal, type Principal } from '../auth/principal';
import type { SessionService } from '../auth/session-service';
import type { PlatformDatabase } from '../database/platform-database';
import { AppError, ErrorCode, tenantReadOnly } from '../errors/app-error';
import { actorOf } from '../records/record-changes';
import { TripLoaders } from '../dispatch/trip-tables';
import type { DispatchScope } from '../dispatch/trips';
import { createFleetLoaders } from '../fleet/fleet-loaders';
import type { TenantLifecycle } from '../provisioning/tenant-lifecycle';
import type { DatabaseClusters } from '../clusters/database-clusters';
import type { TenantMover } from '../provisioning/tenant-mover';
import type { TenantMigrationRunner } from '../provisioning/tenant-migration-runner';
import type { TenantProvisioner } from '../provisioning/tenant-provisioner';
import type { TenantDeletionPurge } from '../provisioning/tenant-deletion';
import type { TenantClientPool } from '../tenancy/tenant-client-pool';
import type { TenantDirectory } from '../tenancy/tenant-directory';
import type { AuditActor } from '../audit/audit-entry';
import type { AuditRelay } from '../audit/audit-relay';
import type { JobQueue } from '../jobs/job-queue';
import type { DeliveryWorker } from '../notifications/delivery-worker';
import type { DeletedRecordPurge } from '../records/retention-purge';
import type { ApiKeyService } from '../api-keys/api-key-service';
import type { OperationSafelist } from '../persisted-queries/operation-safelist';
import type { WebhookEndpoints } from '../webhooks/webhook-endpoints';
import type { SlackWebhooks } from '../slack/slack-webhook';
import type { EventBus } from '../subscriptions/event-bus';

export type { AuthPayload };

/** The application services resolvers call; built once per server. */
export interface Services {
  platform: PlatformDatabase;
  directory: TenantDirectory;
  tenantClients: TenantClientPool;
  sessions: SessionService;
  members: MemberService;
  invitations: InvitationService;
  provisioner: TenantProvisioner;
  migrations: TenantMigrationRunner;
  /** Tenants between clusters (moveTenant); the registry of clusters. */
  mover: TenantMover;
  clusters: DatabaseClusters;
  lifecycle: TenantLifecycle;
  apiKeys: ApiKeyService;
  safelist: OperationSafelist;
  jobs: JobQueue;
  notifications: DeliveryWorker;
  auditRelay: AuditRelay;
  retention: DeletedRecordPurge;
  tenantDeletion: TenantDeletionPurge;
  mailer: Mailer;
  accountEmails: AccountEmailService;
  webhooks: WebhookEndpoints;
  slack: SlackWebhooks;
  /** Committed events and per-user messages, to this instance's subscribers and every other's (src/subscriptions). */
  eventBus: EventBus;
}

/** What a tenant-scoped resolver works with: its tenant's client, this request's loaders, the caller. */
export type TenantScope = DispatchScope;

export interface RequestContext {
  requestId: string;
  /** performance.now() when the request reached Apollo: its execution deadline counts from here. */
  startedAt: number;
  /** Budget points each operation already spent in the request guard, before it was priced. */
  prepaidPoints: number;
  /** The operation as sent, as the guard's memo of prices keys it (src/rate-limiting/known-costs.ts). */
  costKey: string | undefined;
  principal: Principal;
  /** The client's address (per-IP limits of signed-out calls such as login). */
  clientIp: string;
  services: Services;
  /** Set once the operation is known (request-lifecycle-plugin): a mutation may write to its tenant. */
  isMutation: boolean;
  /**
   * The caller's tenant-bound client and loaders, leased on first use. In a mutation of a tenant
   * whose writes a move has stopped: TENANT_READ_ONLY (a mutation that reaches tenant data
   * writes there), before any statement; queries go on.
   */
  tenantScope(): TenantScope;
  /** Returns the lease; called once the response is sent. */
  release(): void;
}

/** The platform admin calling, as the audit log names them (the field's @platformAdmin policy let only one through). */
export function platformAdminActor(ctx: RequestContext): AuditActor {
  const { principal } = ctx;
  if (principal.kind !== 'platformAdmin') throw new Error('a platform-admin field ran for another principal');
  return { actorKind: 'PLATFORM_ADMIN', actorId: principal.adminId, requestId: ctx.requestId };
}

/** The signed-in member (never an API key); member and key management need one. */
export function memberPrincipal(ctx: RequestContext): MemberPrincipal {
  const { principal } = ctx;
  if (principal.kind !== 'member') throw new AppError(ErrorCode.FORBIDDEN, 'Only a signed-in member can do this');
  return principal;
}

export function createRequestContext(options: {
  requestId: string;
  principal: Principal;
  prepaidPoints: number;
  costKey: string | undefined;
  clientIp: string;
  services: Services;
}): RequestContext {
  const { principal, services } = options;
  let scope: TenantScope | undefined;
  let releaseLease: (() => void) | undefined;
  const context: RequestContext = {
    ...options,
    startedAt: performance.now(),
    isMutation: false,
    tenantScope() {
      if (scope) return scope;
      if (!isTenantPrincipal(principal)) {
        throw new AppError(ErrorCode.FORBIDDEN, 'This operation acts on a tenant; sign in as a member of that tenant');
      }
      if (context.isMutation && principal.tenant.readOnlySince) throw tenantReadOnly();
      const lease = services.tenantClients.lease(principal.tenant);
      releaseLease = lease.release;
      const { db, sql } = lease;
      let trips: TripLoaders | undefined;
      scope = {
        principal,
        actor: actorOf(principal, options.requestId),
        db,
        sql,
        loaders: createFleetLoaders(sql),
        // Built on first use: most requests never read a trip.
        get trips() {
          return (trips ??= new TripLoaders(sql));
        },
      };
      return scope;
    },
    release() {
      releaseLease?.();
      releaseLease = undefined;
      // A subscription's context serves event after event: the next one leases (and loads) afresh.
      scope = undefined;
    },
  };
  return context;
}
