import type pg from 'pg';
import { eventually } from './raw-graphql';

export interface HeldLock {
  /** Resolves once another session waits on the lock (the call under test got that far). */
  untilSomeoneWaits(): Promise<void>;
  /** More statements in the transaction holding the lock, committed when the scene ends. */
  query(sql: string, params?: unknown[]): Promise<pg.QueryResult>;
}

/**
 * Runs `scene` inside a transaction that first takes a row lock with `lockSql`, then commits.
 * Lets a test stop a request at the exact point where it meets that row, change things under it,
 * and see what the request makes of it: races replayed in order instead of hoped for.
 */
export async function withRowLocked<T>(pool: pg.Pool, lockSql: string, params: unknown[], scene: (lock: HeldLock) => Promise<T>): Promise<T> {
  const holder = await pool.connect();
  try {
    await holder.query('BEGIN');
    await holder.query(lockSql, params);
    const pid = (await holder.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid;
    const lock: HeldLock = {
      untilSomeoneWaits: async () => {
        await eventually(async () => {
          const waiting = await pool.query('SELECT 1 FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))', [pid]);
          return waiting.rowCount === 1 ? true : undefined;
        }, 10_000, 20);
      },
      query: (sql, queryParams) => holder.query(sql, queryParams),
    };
    const result = await scene(lock);
    await holder.query('COMMIT');
    return result;
  } catch (error) {
    await holder.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    holder.release();
  }
}
