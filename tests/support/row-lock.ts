import type pg from 'pg';
import { eventually } from './raw-graphql';

export interface HeldLock {
  /**
   * Resolves once `count` other sessions wait on the lock, directly or queued behind one that
   * does (the calls under test got that far). With `underTest`, the calls themselves: one that
   * settles first never reached the lock, and the wait fails at once saying what it answered
   * (a bare timeout told nothing the times this went wrong under load).
   */
  untilSomeoneWaits(count?: number, underTest?: Promise<unknown> | readonly Promise<unknown>[]): Promise<void>;
  /** More statements in the transaction holding the lock, committed when the scene ends. */
  query(sql: string, params?: unknown[]): Promise<pg.QueryResult>;
}

/** Sessions blocked by the backend $1, or by one of those, and so on. */
const WAITERS_BEHIND = `
  WITH RECURSIVE waiter(pid) AS (
    SELECT pid FROM pg_stat_activity WHERE $1::int = ANY(pg_blocking_pids(pid))
    UNION
    SELECT activity.pid FROM pg_stat_activity activity JOIN waiter ON waiter.pid = ANY(pg_blocking_pids(activity.pid))
  )
  SELECT count(*)::int AS waiters FROM waiter`;

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
      untilSomeoneWaits: async (count = 1, underTest = []) => {
        let settledEarly: string | undefined;
        for (const call of Array.isArray(underTest) ? underTest : [underTest]) {
          void (call as Promise<unknown>).then(
            (value) => (settledEarly ??= `answered ${JSON.stringify(value)}`),
            (error: unknown) => (settledEarly ??= `failed: ${error instanceof Error ? error.message : String(error)}`),
          );
        }
        let waiters = 0;
        await eventually(async () => {
          if (settledEarly !== undefined) throw new Error(`a call under test settled before ${count} waited on the lock (${waiters} did): ${settledEarly}`);
          const waiting = await pool.query<{ waiters: number }>(WAITERS_BEHIND, [pid]);
          waiters = waiting.rows[0]?.waiters ?? 0;
          return waiters === count ? true : undefined;
        }, 10_000, 20).catch((error: unknown) => {
          throw settledEarly === undefined && error instanceof Error ? new Error(`${error.message}: ${waiters} of ${count} waited on the lock`) : error;
        });
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
