import pg from 'pg';
import { PLATFORM_CLUSTER, type ClusterSpec, type ClusterState } from '../config/config';
import { clientConfigFromUrl, databaseNameOf } from '../database/connection-url';
import type { PlatformDatabase } from '../database/platform-database';
import { within } from '../concurrency/within';
import { AppError, ErrorCode, badInput } from '../errors/app-error';

/** One PostgreSQL cluster tenant schemas may live on. */
export interface DatabaseCluster {
  name: string;
  state: ClusterState;
  /** The server's own login there (DDL: roles, schemas, the audit seal, moves). */
  url: string;
  databaseName: string;
  /** Where tenant roles log in: `url`, or for `main` the pooler (TENANT_POOLER_URL) when set. */
  tenantServerUrl: string;
  /** The server's connections there; on `main`, the platform's own pool. */
  adminPool: pg.Pool;
}

/** A cluster as platform admins see it (`databaseClusters`). */
export interface DatabaseClusterSummary {
  name: string;
  state: 'OPEN' | 'DRAINING' | 'CLOSED';
  tenantCount: number;
  reachable: boolean;
}

const REACHABLE_WITHIN_MS = 2_000;

/** Connections the server's own role keeps per other cluster: DDL and moves, never requests. */
const ADMIN_POOL_MAX = 4;
/**
 * Bounds on another cluster's admin connections: one that does not answer (a frozen server
 * accepts TCP and says nothing) must fail a call, not hang it with its tenant's lock held.
 * A statement may run 5 minutes: a move's COPY of one table is one statement.
 */
const ADMIN_CONNECT_TIMEOUT_MS = 5_000;
const ADMIN_QUERY_TIMEOUT_MS = 300_000;

/**
 * The registry of PostgreSQL clusters (ADR 0023): `main` (DATABASE_URL, which also holds the
 * platform schema) and those TENANT_CLUSTERS names, each with its state from
 * TENANT_CLUSTER_STATES. A tenant's platform row names its cluster; everything that reaches a
 * tenant's schema (its client pool, provisioning, migrations, the audit seal, moves) asks here
 * where that is. The URLs stay in the environment: the platform database never holds a password.
 */
export class DatabaseClusters {
  private readonly byName = new Map<string, DatabaseCluster>();

  constructor(
    specs: readonly ClusterSpec[],
    private readonly platform: PlatformDatabase,
    tenantServerUrlOfMain: string,
  ) {
    const servers = new Map<string, string>();
    for (const spec of specs) {
      const main = spec.name === PLATFORM_CLUSTER;
      const url = main ? platform.url : spec.url;
      if (!url) throw new Error(`cluster ${spec.name} has no URL`);
      // Roles belong to a PostgreSQL server, not a database: two "clusters" on one server would
      // share each tenant's role, and dropping it on one would break the other.
      const { host, port } = new URL(url);
      const server = `${host}:${port || '5432'}`;
      const sharing = servers.get(server);
      if (sharing) throw new Error(`clusters ${sharing} and ${spec.name} are the same PostgreSQL server (${server}); each cluster must be its own server`);
      servers.set(server, spec.name);
      const adminPool = main
        ? platform.pool
        : new pg.Pool({
            ...clientConfigFromUrl(url),
            max: ADMIN_POOL_MAX,
            application_name: 'fleet-graphql-platform',
            connectionTimeoutMillis: ADMIN_CONNECT_TIMEOUT_MS,
            query_timeout: ADMIN_QUERY_TIMEOUT_MS,
            keepAlive: true,
          });
      if (!main) adminPool.on('error', () => undefined); // an idle connection dropped; the next checkout reconnects
      this.byName.set(spec.name, {
        name: spec.name,
        state: spec.state,
        url,
        databaseName: databaseNameOf(url),
        tenantServerUrl: main ? tenantServerUrlOfMain : url,
        adminPool,
      });
    }
  }

  list(): DatabaseCluster[] {
    return [...this.byName.values()];
  }

  names(): string[] {
    return [...this.byName.keys()];
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  /**
   * The cluster a tenant row names. A name this instance was not configured with is an
   * operator's mistake (TENANT_CLUSTERS differs between instances): the tenant is unavailable,
   * not served from somewhere else.
   */
  get(name: string): DatabaseCluster {
    const cluster = this.byName.get(name);
    if (!cluster) {
      throw new AppError(ErrorCode.SERVICE_UNAVAILABLE, "This tenant's database cluster is not configured on this server", {
        extensions: { retryAfter: 30 },
      });
    }
    return cluster;
  }

  /** A cluster that may receive a tenant (placement or a move): one that exists and is open. */
  assertOpen(name: string, field: string): DatabaseCluster {
    const cluster = this.byName.get(name);
    // The name is the caller's: echoed only as far as a cluster name can go.
    if (!cluster) throw badInput(`No cluster named "${name.length > 31 ? `${name.slice(0, 31)}...` : name}"; configured: ${this.names().join(', ')}`, field);
    if (cluster.state !== 'open') throw badInput(`Cluster "${name}" is ${cluster.state}: it takes no new tenants`, field);
    return cluster;
  }

  /**
   * Where a new tenant goes: the named cluster (if open), or the open cluster holding the fewest
   * tenants (ties: the first configured). Two concurrent placements may pick the same one; the
   * counts even out over the next ones.
   */
  async placeNewTenant(requested: string | null | undefined): Promise<DatabaseCluster> {
    if (requested) {
      const named = this.assertOpen(requested, 'cluster');
      // Checked before the tenant's row exists: a cluster that is down would leave a FAILED tenant behind.
      if (!(await answers(named.adminPool))) throw clusterUnreachable(named.name);
      return named;
    }
    const open = this.list().filter((cluster) => cluster.state === 'open');
    if (open.length === 0) throw new AppError(ErrorCode.SERVICE_UNAVAILABLE, 'No database cluster is open for new tenants', { extensions: { retryAfter: 60 } });
    const counts = await this.tenantCounts();
    // The fewest tenants first (ties: the first configured); one that does not answer is passed over.
    const byLoad = [...open].sort((a, b) => (counts.get(a.name) ?? 0) - (counts.get(b.name) ?? 0));
    for (const cluster of byLoad) if (await answers(cluster.adminPool)) return cluster;
    throw new AppError(ErrorCode.SERVICE_UNAVAILABLE, 'No database cluster open for new tenants answers now', { extensions: { retryAfter: 30 } });
  }

  /** Tenants per cluster, from the platform rows (any status: a provisioning tenant holds a schema too). */
  async tenantCounts(): Promise<Map<string, number>> {
    const grouped = await this.platform.prisma.tenant.groupBy({ by: ['cluster'], _count: { _all: true } });
    return new Map(grouped.map((group) => [group.cluster, group._count._all]));
  }

  /** Every cluster with its tenant count, and whether it answers now. */
  async summaries(): Promise<DatabaseClusterSummary[]> {
    const counts = await this.tenantCounts();
    return Promise.all(
      this.list().map(async (cluster) => ({
        name: cluster.name,
        state: cluster.state.toUpperCase() as DatabaseClusterSummary['state'],
        tenantCount: counts.get(cluster.name) ?? 0,
        reachable: await answers(cluster.adminPool),
      })),
    );
  }

  /** Clusters named by tenant rows but not configured here: logged at start-up. */
  async unconfiguredInUse(): Promise<string[]> {
    return [...(await this.tenantCounts()).keys()].filter((name) => !this.byName.has(name));
  }

  /** Closes the pools of the other clusters (main's is the platform's, closed with it). */
  async close(): Promise<void> {
    await Promise.all(this.list().filter((cluster) => cluster.name !== PLATFORM_CLUSTER).map((cluster) => cluster.adminPool.end().catch(() => undefined)));
  }
}

function clusterUnreachable(name: string): AppError {
  return new AppError(ErrorCode.SERVICE_UNAVAILABLE, `Cluster "${name}" does not answer now; retry, or name another`, { extensions: { retryAfter: 30 } });
}

async function answers(pool: pg.Pool): Promise<boolean> {
  return within(pool.query('SELECT 1'), REACHABLE_WITHIN_MS, () => new Error('timed out')).then(
    () => true,
    () => false,
  );
}
