import type pg from 'pg';
import { describeError, type Logger } from '../observability/logger';

/**
 * Runs `work` every `intervalMs` on one instance at a time: each run holds a session advisory
 * lock on a connection of its own, and an instance that finds it taken skips that turn (another
 * is doing the work). A lock dies with its connection, so a crashed run frees it. Runs never
 * overlap on one instance either.
 */
export class PeriodicJob {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private closed = false;

  constructor(
    private readonly options: {
      name: string;
      pool: pg.Pool;
      /** Advisory-lock key (class, key) of this job. */
      lock: readonly [number, number];
      intervalMs: number;
      logger: Logger;
      work: () => Promise<void>;
    },
  ) {}

  start(): void {
    if (this.options.intervalMs <= 0) return;
    this.timer = setInterval(() => void this.runOnce(), this.options.intervalMs);
    this.timer.unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }

  /** One turn now (unless one is under way here, or another instance holds the lock); true if it ran. */
  async runOnce(): Promise<boolean> {
    if (this.closed || this.running) return false;
    let ran = false;
    this.running = (async () => {
      const client = await this.options.pool.connect();
      try {
        const { rows } = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1, $2) AS locked', [...this.options.lock]);
        if (!rows[0]?.locked) return;
        try {
          await this.options.work();
          ran = true;
        } finally {
          await client.query('SELECT pg_advisory_unlock($1, $2)', [...this.options.lock]);
        }
      } catch (error) {
        this.options.logger.error({ job: this.options.name, err: describeError(error) }, 'periodic job failed; the next turn retries');
      } finally {
        client.release();
      }
    })();
    try {
      await this.running;
    } finally {
      this.running = null;
    }
    return ran;
  }
}
