import path from 'node:path';
import { Piscina } from 'piscina';
import { BoundedAdmission } from '../concurrency/bounded-admission';
import { AppError, ErrorCode } from '../errors/app-error';
import type { PasswordTask, PasswordTaskResult } from './password-worker';

/*
 * The worker module is password-worker next to this file: compiled to .js beside this one in
 * dist/ (plain `node`), but a .ts file when running from sources (tsx, jest). A worker thread
 * loads its module with Node's own loaders, which neither jest's transform nor (for an explicit
 * execArgv) tsx's reach, so from sources the thread is given tsx's CommonJS hook; tsx is a dev
 * dependency, as running from sources is.
 */
const MODULE_EXTENSION = path.extname(__filename);
const WORKER_FILE = path.join(__dirname, `password-worker${MODULE_EXTENSION}`);
const WORKER_EXEC_ARGV = MODULE_EXTENSION === '.ts' ? ['--require', require.resolve('tsx/cjs')] : undefined;

/** What retryAfter is estimated from before any job has finished: bcrypt at cost 10, roughly. */
const INITIAL_RUN_MS_ESTIMATE = 100;

export interface PasswordJobsOptions {
  /** Worker threads running bcrypt. */
  threads: number;
  /** Jobs that may wait for a thread, beyond one running on each. */
  queueMax: number;
  /** How long a job arriving at a full queue may wait for room before it is refused (0: refused at once). */
  queueWaitMs: number;
  /**
   * The instance's budget of password checks: null to go ahead, or the seconds until there is
   * one (RATE_LIMITED). bcrypt is CPU on the machine the requests share, whatever thread runs
   * it, so the budget bounds its share (PASSWORD_CHECKS_PER_SECOND); given by the composition
   * root, which owns the token buckets.
   */
  takeCheck?: () => Promise<number | null>;
  /** A worker thread failed (not a job: bcrypt's own errors reject their job). */
  onWorkerError?: (error: Error) => void;
}

export interface PasswordJobStats {
  /** Worker threads alive. */
  threads: number;
  /** Jobs on a thread now. */
  running: number;
  /** Jobs admitted and waiting for a thread. */
  queued: number;
  /** Jobs waiting for room in the queue. */
  waiting: number;
  completed: number;
  failed: number;
  refused: number;
}

/**
 * bcrypt on worker threads, behind a bounded queue. bcrypt is tens of milliseconds of pure CPU
 * per call: on the event loop, a flood of failed logins stalled every tenant's requests. Here it
 * costs the event loop a message each way, and when more jobs arrive than the threads can work
 * off, the excess is refused with RATE_LIMITED instead of queueing without end.
 *
 * piscina (rather than node:worker_threads by hand) replaces a crashed thread, and hands out
 * tasks and closes the threads for us. Its own `maxQueue` refuses at once; the admission in front
 * of it adds the short wait, and counts the jobs the metrics show.
 */
export class PasswordJobs {
  private readonly pool: Piscina<PasswordTask, PasswordTaskResult>;
  private readonly admission: BoundedAdmission;
  private readonly counts = { completed: 0, failed: 0, refused: 0 };
  private meanRunMs = INITIAL_RUN_MS_ESTIMATE;
  private closing: Promise<void> | undefined;

  constructor(private readonly options: PasswordJobsOptions) {
    const slots = options.threads + options.queueMax;
    this.admission = new BoundedAdmission(slots, slots, options.queueWaitMs);
    this.pool = new Piscina({
      filename: WORKER_FILE,
      execArgv: WORKER_EXEC_ARGV,
      minThreads: options.threads,
      maxThreads: options.threads,
      // The admission lets fewer through; this only keeps piscina's queue bounded on its own.
      // (Not queueMax: piscina also queues a task while its thread is starting.)
      maxQueue: slots,
    });
    // Without a listener, a thread that fails to start would throw on the event loop.
    this.pool.on('error', (error: Error) => options.onWorkerError?.(error));
  }

  async hash(password: string, rounds: number): Promise<string> {
    const value = await this.run({ kind: 'hash', password, rounds });
    if (typeof value !== 'string') throw new TypeError('password worker returned no hash');
    return value;
  }

  async compare(password: string, hash: string): Promise<boolean> {
    const value = await this.run({ kind: 'compare', password, hash });
    if (typeof value !== 'boolean') throw new TypeError('password worker returned no verdict');
    return value;
  }

  stats(): PasswordJobStats {
    const queued = Math.min(this.pool.queueSize, this.admission.holding);
    return {
      threads: this.pool.threads.length,
      running: this.admission.holding - queued,
      queued,
      waiting: this.admission.waiting,
      ...this.counts,
    };
  }

  /** Lets running and queued jobs finish, then ends the threads. */
  close(): Promise<void> {
    this.closing ??= this.pool.close();
    return this.closing;
  }

  private async run(task: PasswordTask): Promise<string | boolean> {
    const budgetRetryAfter = (await this.options.takeCheck?.()) ?? null;
    if (budgetRetryAfter !== null) {
      this.counts.refused += 1;
      const retryAfter = Math.max(1, Math.ceil(budgetRetryAfter));
      throw new AppError(ErrorCode.RATE_LIMITED, `Too many password checks on this server; retry in ${retryAfter} s`, {
        extensions: { retryAfter },
      });
    }
    if (!(await this.admission.acquire())) {
      this.counts.refused += 1;
      throw this.refusal();
    }
    try {
      const { value, runMs } = await this.pool.run(task);
      this.counts.completed += 1;
      this.meanRunMs += (runMs - this.meanRunMs) / 8;
      return value;
    } catch (error) {
      this.counts.failed += 1;
      throw error;
    } finally {
      this.admission.release();
    }
  }

  private refusal(): AppError {
    const backlog = this.admission.holding + this.admission.waiting;
    const retryAfter = Math.max(1, Math.ceil((backlog * this.meanRunMs) / this.options.threads / 1000));
    // A field error, answered with the rest of the response (not a refused request), so no HTTP status of its own.
    return new AppError(ErrorCode.RATE_LIMITED, `Too many password checks in progress on this server; retry in ${retryAfter} s`, {
      extensions: { retryAfter },
    });
  }
}
