import { PrismaPg } from '@prisma/adapter-pg';
import { GraphQLError } from 'graphql';
import { LRUCache } from 'lru-cache';
import pg from 'pg';
import { AppError, ErrorCode } from '../errors/app-error';
import { PrismaClient as TenantPrismaClient } from '../generated/prisma/tenant/client';
import type { ConnectionBudget } from './connection-budget';
import { TenantSql } from './tenant-sql';

export type TenantPrisma = InstanceType<typeof TenantPrismaClient>;

/** What the pool needs to know about a tenant to reach its schema. */
export interface TenantDatabaseRef {
  id: string;
  schemaName: string;
  dbRole: string;
  /** The PostgreSQL cluster holding the schema (src/clusters). */
  cluster: string;
  /** When the platform row last changed: of two differing refs to one tenant, the newer wins. */
  updatedAt: Date;
}

/**
 * The platform Tenant columns a TenantDatabaseRef is read from, for the jobs that read the row
 * themselves with SQL: one list, so a field added to the ref reaches every such query.
 */
export function tenantRefColumns(alias?: string): string {
  const prefix = alias ? `${alias}.` : '';
  return ['id', 'schemaName', 'dbRole', 'cluster', 'updatedAt'].map((column) => `${prefix}"${column}"`).join(', ');
}

/**
 * A tenant-bound client, kept alive until release() even if the LRU evicts it meanwhile: Prisma
 * for writes and transactions, and SQL reads on the same connections (see TenantSql).
 */
export interface TenantLease {
  readonly db: TenantPrisma;
  readonly sql: TenantSql;
  release(): void;
}

export interface TenantClientPoolOptions {
  /** Most tenant clients kept cached. */
  cacheMax: number;
  /**
   * Connections one tenant's pool may open: its first whenever it needs one, more (up to this)
   * only while the budget has room to spare (ConnectionBudget.hasRoomToGrow).
   */
  poolMax: number;
  idleTimeoutMs: number;
  /**
   * A statement running longer is cancelled by PostgreSQL (statement_timeout): a query's
   * deadline (MAX_EXECUTION_MS) cannot stop SQL already sent, and a client that hangs up does
   * not either. Absent: no limit.
   */
  statementTimeoutMs?: number;
  connectTimeoutMs: number;
  /** One connection budget per cluster: a busy cluster's waiters never take another's connections. */
  budgets: ReadonlyMap<string, ConnectionBudget>;
  /** Login settings (user = tenant role) for a tenant's connections. */
  connectionConfig(tenant: TenantDatabaseRef): pg.ClientConfig;
  /** Called for every statement a tenant connection sends (metrics; the N+1 test reads them). */
  onQuery?: () => void;
  onError?: (error: Error, tenantId: string) => void;
}

interface CachedClient {
  tenant: TenantDatabaseRef;
  budget: ConnectionBudget;
  pool: pg.Pool;
  db: TenantPrisma;
  sql: TenantSql;
  leases: number;
  /** Evicted from the cache; disconnect when the last lease is released. */
  retired: boolean;
}

export interface TenantClientPoolStats {
  cachedClients: number;
  leasedClients: number;
  openConnections: number;
  connectionBudget: number;
  waitingForConnection: number;
  /** Since start: clients pushed out of the full LRU by other tenants' (not forgotten ones). */
  evictions: number;
  /** Since start: connections that queued for the budget, and those that gave up. */
  budgetWaits: number;
  budgetWaitTimeouts: number;
  /** The connection figures above, per cluster. */
  clusters: { name: string; openConnections: number; connectionBudget: number; waitingForConnection: number }[];
}

/**
 * One Prisma client per tenant schema, each on its own small pg pool that logs in as the
 * tenant's role, kept in an LRU. Isolation is the database's: a tenant role can only reach its
 * own schema, and its default search_path is that schema. Connections of all tenants of a
 * cluster together stay under that cluster's ConnectionBudget; idle connections close after
 * idleTimeoutMs, so idle tenants hold none.
 */
export class TenantClientPool {
  private readonly clients: LRUCache<string, CachedClient>;
  private readonly clientClasses = new Map<ConnectionBudget, typeof pg.Client>();
  private closed = false;
  /** Per budget: connections closing to free a permit for a waiter, not closed yet. */
  private readonly reclaiming = new Map<ConnectionBudget, number>();
  private evictions = 0;

  constructor(private readonly options: TenantClientPoolOptions) {
    this.clients = new LRUCache<string, CachedClient>({
      max: options.cacheMax,
      dispose: (entry, _key, reason) => {
        if (reason === 'evict') this.evictions += 1;
        entry.retired = true;
        if (entry.leases === 0) void this.disconnect(entry);
      },
    });
    for (const budget of options.budgets.values()) {
      this.clientClasses.set(budget, budgetedClientClass(budget, options.connectTimeoutMs, options.onQuery));
      this.reclaiming.set(budget, 0);
      budget.onPressure = () => this.reclaimIdleConnections(budget);
    }
  }

  lease(tenant: TenantDatabaseRef): TenantLease {
    if (this.closed) throw new Error('tenant client pool is closed');
    let entry = this.clients.get(tenant.id);
    // A tenant moved to another cluster (or renamed) gets a new client; the old one ends with its
    // last lease. Unless the ref is the older one: a request that read the row just before a
    // move's switch must not take the tenant back to its source from the requests that know better.
    if (entry && (entry.tenant.schemaName !== tenant.schemaName || entry.tenant.dbRole !== tenant.dbRole || entry.tenant.cluster !== tenant.cluster)) {
      const older = tenant.updatedAt < entry.tenant.updatedAt;
      if (!older) {
        this.clients.delete(tenant.id);
        entry = undefined;
      }
    }
    if (!entry) {
      entry = this.connect(tenant);
      this.clients.set(tenant.id, entry);
    }
    const leased = entry;
    leased.leases += 1;
    let released = false;
    return {
      db: leased.db,
      sql: leased.sql,
      release: () => {
        if (released) return;
        released = true;
        leased.leases -= 1;
        if (leased.leases > 0) return;
        if (leased.retired) void this.disconnect(leased);
        // Its request is done: its idle connections are now the first to go to a waiter.
        else if (this.permitsWanted(leased.budget) > 0) this.reclaimIdleConnections(leased.budget);
      },
    };
  }

  /** Drops a tenant's client (after a suspension, say); in-flight leases finish first. */
  forget(tenantId: string): void {
    this.clients.delete(tenantId);
  }

  /**
   * Whether background work (notification deliveries) may take a connection on this cluster
   * now: nobody waits for one and some of its budget is still free, so requests never queue
   * behind jobs.
   */
  hasRoomForBackgroundWork(cluster: string): boolean {
    return this.options.budgets.get(cluster)?.hasRoomToGrow() ?? false;
  }

  stats(): TenantClientPoolStats {
    let leasedClients = 0;
    for (const entry of this.clients.values()) if (entry.leases > 0) leasedClients += 1;
    const clusters = [...this.options.budgets].map(([name, budget]) => ({
      name,
      openConnections: budget.inUse,
      connectionBudget: budget.limit,
      waitingForConnection: budget.waiting,
    }));
    const budgets = [...this.options.budgets.values()];
    const sum = (figure: (budget: ConnectionBudget) => number) => budgets.reduce((total, budget) => total + figure(budget), 0);
    return {
      cachedClients: this.clients.size,
      leasedClients,
      openConnections: sum((budget) => budget.inUse),
      connectionBudget: sum((budget) => budget.limit),
      waitingForConnection: sum((budget) => budget.waiting),
      evictions: this.evictions,
      budgetWaits: sum((budget) => budget.waits.all),
      budgetWaitTimeouts: sum((budget) => budget.waits.timedOut),
      clusters,
    };
  }

  isCached(tenantId: string): boolean {
    return this.clients.has(tenantId);
  }

  async close(): Promise<void> {
    this.closed = true;
    const entries = [...this.clients.values()];
    this.clients.clear(); // dispose marks them retired and disconnects unleased ones
    await Promise.all(entries.map((entry) => this.disconnect(entry)));
  }

  private connect(tenant: TenantDatabaseRef): CachedClient {
    const { onError } = this.options;
    const budget = this.options.budgets.get(tenant.cluster);
    const clientClass = budget && this.clientClasses.get(budget);
    if (!budget || !clientClass) {
      throw new AppError(ErrorCode.SERVICE_UNAVAILABLE, "This tenant's database cluster is not configured on this server", { extensions: { retryAfter: 30 } });
    }
    const pool = new pg.Pool({
      ...this.options.connectionConfig(tenant),
      Client: clientClass,
      max: this.options.poolMax,
      idleTimeoutMillis: this.options.idleTimeoutMs,
      ...(this.options.statementTimeoutMs ? { statement_timeout: this.options.statementTimeoutMs } : {}),
      allowExitOnIdle: true,
    });
    growsWithDemand(pool, this.options.poolMax, budget);
    pool.on('error', (error) => onError?.(error, tenant.id));
    const db = new TenantPrismaClient({ adapter: new PrismaPg(pool, { schema: tenant.schemaName }) });
    const entry: CachedClient = { tenant, budget, pool, db, sql: new TenantSql(pool), leases: 0, retired: false };
    this.yieldsToWaiters(entry);
    return entry;
  }

  /** Permits that waiters of a budget still need beyond those of connections already closing for them. */
  private permitsWanted(budget: ConnectionBudget): number {
    return budget.waiting - (this.reclaiming.get(budget) ?? 0);
  }

  private countReclaiming(budget: ConnectionBudget, change: 1 | -1): void {
    this.reclaiming.set(budget, (this.reclaiming.get(budget) ?? 0) + change);
  }

  /**
   * Whether a connection of this client that is not running a statement should close for a
   * waiter: when its tenant has no request in flight, or when the first waiter has waited past
   * the budget's fair share (a tenant serving request after request never has none in flight).
   */
  private owesConnection(entry: CachedClient): boolean {
    return this.permitsWanted(entry.budget) > 0 && (entry.leases === 0 || entry.budget.longestWaitMs() >= entry.budget.fairShareMs);
  }

  /** Counts a connection closing for a waiter until it has closed (and its permit moved on). */
  private closingForWaiter(budget: ConnectionBudget, client: pg.Client): void {
    this.countReclaiming(budget, 1);
    client.once('end', () => this.countReclaiming(budget, -1));
  }

  /**
   * A connection the pool takes back while someone waits for a permit closes instead of waiting
   * idle (or going to the next statement of its own tenant), when owesConnection says so: the
   * case pressure alone cannot see, since at pressure time every connection was busy.
   *
   * pg-pool has no hook to refuse a returned connection, but it reads `options.maxUses` right
   * after emitting 'release' for that connection and closes one that reached it; so `maxUses`
   * answers 0 for the connection just released when it should close (as `max` is read live in
   * growsWithDemand). Tested by the 'connection budget under pressure' suite.
   */
  private yieldsToWaiters(entry: CachedClient): void {
    let closeReleased = false;
    entry.pool.on('release', (error: Error | undefined, client: pg.Client) => {
      closeReleased = !error && !this.closed && this.owesConnection(entry);
      if (closeReleased) this.closingForWaiter(entry.budget, client);
    });
    Object.defineProperty(entry.pool.options, 'maxUses', {
      get: () => (closeReleased ? 0 : Infinity),
      configurable: true,
    });
  }

  /** One disconnect per client, whoever asks first; close() awaits the same promise. */
  private readonly disconnecting = new WeakMap<CachedClient, Promise<void>>();

  private disconnect(entry: CachedClient): Promise<void> {
    let ending = this.disconnecting.get(entry);
    if (!ending) {
      ending = (async () => {
        await entry.db.$disconnect().catch(() => undefined);
        await entry.pool.end().catch(() => undefined);
      })();
      this.disconnecting.set(entry, ending);
    }
    return ending;
  }

  /**
   * Someone waits for a permit (it just queued, or its fair share has passed, or a tenant's
   * request just ended): close idle connections, least recently used client first, as many as
   * the waiters need, from clients whose owesConnection says so. The client stays cached; its
   * next request opens a connection again.
   */
  private reclaimIdleConnections(budget: ConnectionBudget): void {
    if (this.closed) return;
    for (const tenantId of this.clients.rkeys()) {
      if (this.permitsWanted(budget) <= 0) return;
      const entry = this.clients.peek(tenantId);
      if (!entry || entry.budget !== budget || entry.pool.idleCount === 0 || !this.owesConnection(entry)) continue;
      for (let idle = entry.pool.idleCount; idle > 0 && this.permitsWanted(budget) > 0; idle -= 1) this.closeIdleConnection(entry);
    }
  }

  /**
   * pg-pool closes no idle connection on request, but hands out idle ones first: check one out
   * (queued behind nothing, since the pool has idle connections it would give to any waiter of
   * its own at once) and release it as broken, which closes it.
   */
  private closeIdleConnection(entry: CachedClient): void {
    this.countReclaiming(entry.budget, 1);
    entry.pool.connect().then(
      (client) => {
        this.countReclaiming(entry.budget, -1);
        this.closingForWaiter(entry.budget, client);
        client.release(true);
      },
      () => this.countReclaiming(entry.budget, -1),
    );
  }
}

/**
 * A tenant's pool grows with its demand inside the global budget: pg-pool opens another
 * connection only when every open one is busy and it is below `options.max`, which it reads at
 * each of those decisions; here that bound is the tenant's first connection, or as many as it
 * holds, plus one more while the budget has room to spare (up to poolMax). So one busy tenant
 * alone on an instance runs on poolMax connections, while many busy tenants each keep one and
 * the rest of the budget stays free for tenants that have none. A pool that grew gives its extra
 * connections back after idleTimeoutMs like any other.
 */
function growsWithDemand(pool: pg.Pool, poolMax: number, budget: ConnectionBudget): void {
  Object.defineProperty(pool.options, 'max', {
    get: () => Math.min(poolMax, budget.hasRoomToGrow() ? pool.totalCount + 1 : Math.max(1, pool.totalCount)),
    configurable: true,
  });
}

/**
 * An AppError as a plain GraphQLError with the same message and extensions, so that it reaches
 * the client through Prisma: Prisma rewraps any error that has a `code` property (as AppError
 * has) as a PrismaClientKnownRequestError, dropping message and extensions, which the error
 * formatter then masks as INTERNAL_SERVER_ERROR; an error without one passes through unchanged.
 */
function throughPrisma(error: AppError): GraphQLError {
  return new GraphQLError(error.message, { extensions: error.extensions });
}

const connectTimedOut = () =>
  new AppError(ErrorCode.SERVICE_UNAVAILABLE, 'The database did not answer in time; retry shortly', { extensions: { retryAfter: 1 } });

/**
 * A pg Client that takes a budget permit before it opens its connection and returns it when
 * the connection ends, for whatever reason, and counts the statements it sends. It also bounds the connect itself: pg-pool's own
 * connect timeout would also count the wait for a permit, and fire mid-wait. So a request waits
 * at most connectTimeoutMs for a permit, then at most connectTimeoutMs for the connection.
 */
function budgetedClientClass(
  budget: ConnectionBudget,
  connectTimeoutMs: number,
  onQuery: (() => void) | undefined,
): typeof pg.Client {
  class BudgetedClient extends pg.Client {
    // pg's query() has many overloads; counting needs none of their types.
    override query(...args: unknown[]): never {
      onQuery?.();
      return (super.query as (...queryArgs: unknown[]) => never)(...args);
    }

    override connect(): Promise<pg.Client>;
    override connect(callback: ((err: Error) => void) | ((err: null, client: pg.Client) => void)): void;
    override connect(
      callback?: ((err: Error) => void) | ((err: null, client: pg.Client) => void),
    ): Promise<pg.Client> | void {
      const connecting = this.connectWithinBudget().then(() => this as pg.Client);
      if (!callback) return connecting;
      const done = callback as (err: Error | null, client?: pg.Client) => void;
      connecting.then(
        (client) => done(null, client),
        (error: Error) => done(error),
      );
    }

    private async connectWithinBudget(): Promise<void> {
      try {
        await budget.acquire();
      } catch (error) {
        throw error instanceof AppError ? throughPrisma(error) : error; // the budget's SERVICE_UNAVAILABLE
      }
      let returned = false;
      const giveBack = () => {
        if (returned) return;
        returned = true;
        budget.release();
      };
      this.once('end', giveBack);
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        (this as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
      }, connectTimeoutMs);
      try {
        await super.connect();
      } catch (error) {
        giveBack();
        throw timedOut ? throughPrisma(connectTimedOut()) : error;
      } finally {
        clearTimeout(timer);
      }
    }
  }
  return BudgetedClient;
}
