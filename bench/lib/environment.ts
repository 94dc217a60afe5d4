import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import Redis from 'ioredis';
import { urlWithDatabase } from '../../src/database/connection-url';
import { PROJECT_ROOT } from '../../src/config/paths';
import { withClient } from '../../tests/support/local-resources';

/*
 * What the benchmark runs on, found by the same rules as the tests (tests/support/global-setup.ts):
 * PostgreSQL from DATABASE_URL, else 127.0.0.1:5432, else embedded (findPostgresServer); Redis
 * from REDIS_URL, else 127.0.0.1:6379. Each run works in its own scratch database.
 */

export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

/** Redis's version, or a clear error when it cannot be reached (rate limiting needs it). */
export async function redisVersion(url: string): Promise<string> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 2000, retryStrategy: () => null });
  try {
    await redis.connect();
    const info = await redis.info('server');
    return /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown';
  } catch (error) {
    throw new Error(`Redis is not reachable at ${url} (set REDIS_URL): ${(error as Error).message}`);
  } finally {
    redis.disconnect();
  }
}


/** A fresh database for this run (dropped with dropTestDatabase, which also drops its tenant roles). */
export async function createScratchDatabase(serverUrl: string): Promise<string> {
  const name = `fleet_bench_${randomBytes(4).toString('hex')}`;
  await withClient(serverUrl, (client) => client.query(`CREATE DATABASE ${client.escapeIdentifier(name)}`));
  return urlWithDatabase(serverUrl, name);
}

export interface MachineInfo {
  cpus: string;
  memory: string;
  os: string;
  node: string;
  postgres: string;
  maxConnections: number;
  commit: string;
}

function git(args: string[]): string | null {
  try {
    return execFileSync('git', args, { cwd: PROJECT_ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

export async function machineInfo(databaseUrl: string): Promise<MachineInfo> {
  const cpus = os.cpus();
  const { version, maxConnections } = await withClient(databaseUrl, async (client) => ({
    version: (await client.query<{ server_version: string }>('SHOW server_version')).rows[0]?.server_version ?? 'unknown',
    maxConnections: Number((await client.query<{ max_connections: string }>('SHOW max_connections')).rows[0]?.max_connections),
  }));
  const head = git(['rev-parse', '--short', 'HEAD']);
  const dirty = git(['status', '--porcelain', '--untracked-files=no']);
  return {
    cpus: `${cpus.length} × ${cpus[0]?.model.trim() ?? 'unknown CPU'}`,
    memory: `${(os.totalmem() / 1024 ** 3).toFixed(1)} GiB`,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    postgres: version,
    maxConnections,
    commit: head ? `${head}${dirty ? ' (with uncommitted changes)' : ''}` : 'unknown',
  };
}

/** The command as the user typed it (through npm or straight through tsx). */
export function commandLine(argv: string[]): string {
  const args = argv.map((arg) => (/^[\w,./=-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", "'\\''")}'`)).join(' ');
  if (process.env.npm_lifecycle_event === 'bench') return `npm run bench${args ? ` -- ${args}` : ''}`;
  return `tsx bench/run.ts${args ? ` ${args}` : ''}`;
}
