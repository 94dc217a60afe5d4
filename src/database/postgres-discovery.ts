import path from 'node:path';
import pg from 'pg';
import { startEmbeddedPostgres } from './embedded-postgres';

export interface PostgresServer {
  /** Superuser URL of the server's `postgres` database (or DATABASE_URL as given). */
  url: string;
  source: 'DATABASE_URL' | 'local' | 'embedded';
  stop(): Promise<void>;
}

export const LOCAL_POSTGRES_URL = 'postgresql://postgres@127.0.0.1:5432/postgres';

async function reachable(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1500 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * The PostgreSQL that tests, benchmarks and scripts use: DATABASE_URL if set, else a server on
 * 127.0.0.1:5432 that lets `postgres` in, else an embedded one in `embeddedDataDir`.
 */
export async function findPostgresServer(options: {
  embeddedDataDir: string;
  embeddedPort: number;
  log?: (message: string) => void;
}): Promise<PostgresServer> {
  const fromEnv = process.env.DATABASE_URL;
  if (fromEnv) return { url: fromEnv, source: 'DATABASE_URL', stop: async () => undefined };
  if (await reachable(LOCAL_POSTGRES_URL)) {
    return { url: LOCAL_POSTGRES_URL, source: 'local', stop: async () => undefined };
  }
  options.log?.(`no DATABASE_URL and nothing on 127.0.0.1:5432: starting embedded PostgreSQL in ${path.resolve(options.embeddedDataDir)}`);
  const embedded = await startEmbeddedPostgres({ dataDir: options.embeddedDataDir, port: options.embeddedPort });
  return { url: embedded.url, source: 'embedded', stop: embedded.stop };
}
