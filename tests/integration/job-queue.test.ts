import { JobQueue } from '../../src/jobs/job-queue';
import { createLogger } from '../../src/observability/logger';
import { readTestServices } from '../support/services';
import { createTestDatabase, dropTestDatabase, openTestPool } from '../support/test-database';

/*
 * The queue's stop against a real PostgreSQL: a handler that outlives stop's bounds ends after
 * the queue has closed. What pg-boss then does with it (complete, without await) must reach no
 * database and throw nothing: an unhandled rejection there failed whichever test ran next.
 */

const services = readTestServices();
let databaseUrl: string;

beforeAll(async () => {
  databaseUrl = await createTestDatabase(services.postgresUrl, services.runId);
});

afterAll(async () => {
  await dropTestDatabase(databaseUrl, services.postgresUrl);
});

it('a handler still running past stop ends quietly: no unhandled rejection, and the job waits for a retry elsewhere', async () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => {
    unhandled.push(reason);
  };
  process.on('unhandledRejection', onUnhandled);
  const queue = new JobQueue({ connectionString: databaseUrl }, createLogger('silent'), { pollingIntervalSeconds: 0.5 });
  try {
    await queue.start([{ name: 'slow', policy: 'standard', retryLimit: 2, retryDelaySeconds: 1, expireInSeconds: 60 }]);
    let release: () => void = () => undefined;
    const started = new Promise<string>((resolveStarted) => {
      void queue.work<{ n: number }>('slow', 1, (_data, jobId) => {
        resolveStarted(jobId);
        return new Promise<void>((resolve) => (release = resolve));
      });
    });
    await queue.send('slow', { n: 1 });
    const jobId = await started;

    const stopStartedAt = Date.now();
    await queue.stop(300);
    // Bounded: the handler's timeout, then at most 2 s for statements under way.
    expect(Date.now() - stopStartedAt).toBeLessThan(5_000);

    release();
    // pg-boss's completion (and its worker's next fetch) happen on later turns of the loop.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(unhandled).toEqual([]);

    const pool = openTestPool({ connectionString: databaseUrl });
    try {
      const job = await pool.query<{ state: string }>('SELECT state FROM pgboss.job WHERE id = $1', [jobId]);
      // pg-boss's stop failed it at the timeout ("shut down while active"): a retry, not a completion.
      expect(job.rows).toEqual([{ state: 'retry' }]);
    } finally {
      await pool.end();
    }
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
});
