import PgBoss from 'pg-boss';
import pg from 'pg';
import type { PlatformTransaction } from '../database/platform-database';
import { describeError, type Logger } from '../observability/logger';
import type { Metrics } from '../observability/metrics';

/*
 * The server's one job queue: pg-boss in the platform database (its own `pgboss` schema, made and
 * migrated by pg-boss at start). Jobs carry ids (a tenant's id, a user's id), never tenant data:
 * what a job does to a tenant it does through that tenant's own role. docs/decisions/0018.
 */

/** pg-boss's schema in the platform database (its tables: `job`, `archive`, `queue`...). */
export const JOB_QUEUE_SCHEMA = 'pgboss';

export interface SendOptions {
  /** With a `stately` queue: at most one job queued and one running per key. */
  singletonKey?: string;
  /** Not before this time. */
  startAfter?: Date;
  /** The job's own id (a uuid): the same id sent twice is one job. */
  id?: string;
  /** Inside this platform transaction: the job exists if and only if the transaction commits. */
  tx?: PlatformTransaction;
}

export interface QueueSpec {
  name: string;
  /** `stately`: one queued and one running job per singletonKey (a wake-up that is never lost nor doubled). */
  policy: 'standard' | 'stately';
  retryLimit: number;
  /** Seconds before the first retry; doubled each time (pg-boss's retryBackoff). */
  retryDelaySeconds: number;
  /** A job running longer is taken as lost (its instance crashed) and retried. */
  expireInSeconds: number;
}

export type JobHandler<Data> = (data: Data, jobId: string) => Promise<void>;

/** pg-boss's `Db` over a Prisma transaction, so a job can be sent inside it. */
function transactionDb(tx: PlatformTransaction): PgBoss.Db {
  return { executeSql: async (text, values) => ({ rows: await tx.$queryRawUnsafe<unknown[]>(text, ...values) }) };
}

/** The queue's connections say so: operators (and tests watching the wire) tell its work from requests'. */
export const JOBS_APPLICATION_NAME = 'fleet-graphql-jobs';

export class JobQueue {
  /**
   * The queue's own connections to the platform database, also used by jobs for their platform
   * reads: background work never waits behind, nor holds up, the requests' platform pool.
   */
  readonly pool: pg.Pool;
  private readonly boss: PgBoss;
  private readonly workers = new Map<string, string[]>();
  private started = false;
  private closed = false;
  /** Resolved when stop closes the queue: statements still pending then are answered "no rows". */
  private markClosed: () => void = () => undefined;
  private readonly closing = new Promise<void>((resolve) => {
    this.markClosed = resolve;
  });
  /** Handlers running on this instance, and the queue's statements under way: stop waits for both. */
  private readonly running = new Set<Promise<unknown>>();
  private readonly statements = new Set<Promise<unknown>>();
  /** False on an instance that only sends jobs (JOB_WORKER_ENABLED=false): others run them. */
  readonly fetchJobs: boolean;
  private readonly metrics: Pick<Metrics, 'declareJobQueue' | 'recordJobRun'> | undefined;

  constructor(
    connection: pg.ClientConfig,
    private readonly logger: Logger,
    options: { pollingIntervalSeconds?: number; fetchJobs?: boolean; metrics?: Pick<Metrics, 'declareJobQueue' | 'recordJobRun'> } = {},
  ) {
    this.metrics = options.metrics;
    this.fetchJobs = options.fetchJobs ?? true;
    this.pool = new pg.Pool({ ...connection, application_name: JOBS_APPLICATION_NAME, max: 4 });
    this.pool.on('error', (error) => this.logger.warn({ err: describeError(error) }, 'job queue connection error'));
    const { pool } = this;
    this.boss = new PgBoss({
      db: { executeSql: (text, values) => this.executeSql(pool, text, values) },
      schema: JOB_QUEUE_SCHEMA,
      // pg-boss's maintenance archives and expires jobs (one instance at a time, by its own
      // advisory lock), on the instances that run jobs.
      supervise: options.fetchJobs ?? true,
      schedule: false,
      ...(options.pollingIntervalSeconds ? { pollingIntervalSeconds: options.pollingIntervalSeconds } : {}),
    });
    this.boss.on('error', (error: unknown) => this.logger.warn({ err: describeError(error) }, 'job queue error'));
  }

  async start(queues: readonly QueueSpec[]): Promise<void> {
    await this.boss.start();
    this.started = true;
    for (const spec of queues) {
      const options: PgBoss.Queue = {
        name: spec.name,
        policy: spec.policy,
        retryLimit: spec.retryLimit,
        retryDelay: spec.retryDelaySeconds,
        retryBackoff: true,
        expireInSeconds: spec.expireInSeconds,
      };
      if (await this.boss.getQueue(spec.name)) await this.boss.updateQueue(spec.name, options);
      else await this.boss.createQueue(spec.name, options);
    }
  }

  async send<Data extends object>(queue: string, data: Data, options: SendOptions = {}): Promise<void> {
    const { tx, ...rest } = options;
    await this.boss.send(queue, data, { ...rest, ...(tx ? { db: transactionDb(tx) } : {}) });
    // The worker of this instance looks at once instead of at its next poll.
    const idle = this.workers.get(queue)?.[0];
    if (idle && !tx) this.boss.notifyWorker(idle);
  }

  /**
   * Runs `handler` for the queue's jobs on this instance, `concurrency` at a time; a throw retries the job.
   * `deleteOnSuccess`: a job that succeeded is deleted at once instead of kept (completed, then
   * archived) for days, for jobs whose data must not outlive their work (an emailed code).
   */
  async work<Data extends object>(queue: string, concurrency: number, handler: JobHandler<Data>, options: { deleteOnSuccess?: boolean } = {}): Promise<void> {
    if (!this.fetchJobs) return;
    this.metrics?.declareJobQueue(queue);
    // pg-boss 10 runs one job at a time per worker: `concurrency` workers, each its own fetch loop.
    const ids: string[] = [];
    for (let i = 0; i < concurrency; i += 1) {
      ids.push(
        await this.boss.work<Data>(queue, { batchSize: 1 }, async ([job]) => {
          if (!job) return;
          const startedAt = performance.now();
          const run = handler(job.data, job.id);
          this.running.add(run);
          // Measured on the handler itself, not on the race below: one still running past stop
          // is counted when it really ends.
          const ended = (outcome: 'ok' | 'failed') => {
            this.running.delete(run);
            this.metrics?.recordJobRun(queue, outcome, (performance.now() - startedAt) / 1000);
          };
          void run.then(
            () => ended('ok'),
            () => ended('failed'),
          );
          try {
            // Past stop's bounds the worker stops waiting for a handler still running, or it
            // would never stop. pg-boss's stop has by then failed the job ("shut down while
            // active"), so it is retried elsewhere; the completion sent here reaches no database.
            await Promise.race([run, this.closing]);
          } catch (error) {
            // pg-boss retries it (with backoff, up to the queue's retryLimit); say why it failed.
            this.logger.warn({ err: describeError(error), queue, jobId: job.id }, 'job failed; it will be retried');
            throw error;
          }
          // pg-boss then completes a job that is gone, which changes nothing. A failed delete is
          // not a failed job: retrying would do the work twice.
          if (options.deleteOnSuccess) {
            await this.boss.deleteJob(queue, job.id).catch((error: unknown) => this.logger.warn({ queue, err: describeError(error) }, 'could not delete a finished job'));
          }
        }),
      );
    }
    this.workers.set(queue, ids);
  }

  /** After a transaction that sent jobs to `queue` commits: this instance's worker looks now, not at its next poll. */
  wake(queue: string): void {
    const idle = this.workers.get(queue)?.[0];
    if (idle) this.boss.notifyWorker(idle);
  }

  /** Stops fetching, lets running jobs finish (up to `timeoutMs`), and closes nothing it does not own. */
  async stop(timeoutMs: number): Promise<void> {
    if (this.started) await this.boss.stop({ graceful: true, close: false, wait: true, timeout: timeoutMs });
    // pg-boss stops waiting at the timeout, but a handler still running will end and report it:
    // the connections stay until then (bounded), so pg-boss's workers end cleanly.
    await settledWithin(this.running, timeoutMs);
    await new Promise((resolve) => setImmediate(resolve));
    await settledWithin(this.statements, 2_000);
    this.closed = true;
    this.markClosed();
    await this.pool.end();
  }

  private executeSql(pool: pg.Pool, text: string, values: unknown[]): Promise<{ rows: unknown[] }> {
    // A straggler past stop's bounds reaches no database. It is answered the way pg-boss's own
    // Db answers once closed: with no result at all (src/db.js), which its fetch reads as "no
    // job" and its complete/fail as "nothing changed" (pg-boss's stop already failed the job into
    // a retry). Not "no rows": complete reads rows[0].count, and it is called
    // without await, so that threw as an unhandled rejection. Not an error, for the same reason;
    // and not silence, which left a pg-boss worker waiting forever. pg-boss's types.d.ts does not
    // admit the undefined its code expects, hence the cast.
    const closedAnswer = undefined as unknown as { rows: unknown[] };
    if (this.closed) return Promise.resolve(closedAnswer);
    const statement = pool.query(text, values);
    this.statements.add(statement);
    void statement.finally(() => this.statements.delete(statement)).catch(() => undefined);
    // One still waiting when the queue closes (for a connection of a pool whose end() leaves its
    // waiters waiting, say) is answered the same way then, so the worker that sent it can stop.
    return Promise.race([statement, this.closing.then(() => closedAnswer)]);
  }
}

async function settledWithin(promises: ReadonlySet<Promise<unknown>>, ms: number): Promise<void> {
  if (promises.size === 0) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([Promise.allSettled([...promises]), new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}
