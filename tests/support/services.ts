/*
 * What the test run uses, decided once by global-setup and handed to every worker through the
 * environment: a real PostgreSQL (DATABASE_URL, else 127.0.0.1:5432, else embedded) and a real
 * Redis (REDIS_URL, else 127.0.0.1:6379).
 */
export interface TestServices {
  runId: string;
  postgresUrl: string;
  redisUrl: string;
  /** Another PostgreSQL server (embedded, started by global-setup): a second tenant cluster. */
  secondPostgresUrl: string;
}

export function readTestServices(): TestServices {
  const { FLEET_TEST_RUN_ID: runId, FLEET_TEST_POSTGRES_URL: postgresUrl, FLEET_TEST_REDIS_URL: redisUrl, FLEET_TEST_SECOND_POSTGRES_URL: secondPostgresUrl } = process.env;
  if (!runId || !postgresUrl || !redisUrl || !secondPostgresUrl) throw new Error('test services not prepared; run the tests through jest (npm test)');
  return { runId, postgresUrl, redisUrl, secondPostgresUrl };
}
