import type pg from 'pg';

/**
 * Runs `work` on a client checked out of `pool` for several statements (a session lock, DDL).
 * While a client is checked out, pg-pool no longer listens for its 'error' event, and pg emits
 * one when the connection drops between two statements: unheard, it would end the process (a
 * database restart during provisioning would take the server down). Here the loss fails the
 * next statement instead, and the dead client is discarded rather than returned to the pool.
 * `work` may discard it too (`discard`), when it left the connection in a state no statement
 * can follow: it is then closed, never reused.
 */
export async function withCheckedOutClient<T>(pool: pg.Pool, work: (client: pg.PoolClient, discard: (reason: unknown) => void) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let lost: Error | undefined;
  const onError = (error: Error) => {
    lost = error;
  };
  client.on('error', onError);
  try {
    return await work(client, (reason) => {
      lost ??= reason instanceof Error ? reason : new Error(String(reason));
    });
  } catch (error) {
    // pg gave up waiting (query_timeout) while the statement may still run there: not reusable.
    if (error instanceof Error && error.message === 'Query read timeout') lost ??= error;
    throw error;
  } finally {
    client.off('error', onError);
    client.release(lost);
  }
}
