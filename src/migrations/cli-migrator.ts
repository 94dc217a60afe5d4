import { spawn } from 'node:child_process';
import path from 'node:path';
import pg from 'pg';
import { PROJECT_ROOT } from '../config/paths';
import { latestMigrationName, type MigrationFolder } from './migration-files';
import { MigrationError, type MigrationOutcome, type MigrationTarget, type Migrator } from './migrator';

/** A postgres:// URL for the target, with `?schema=` as Prisma's CLI expects. */
export function schemaUrl(target: MigrationTarget): string {
  const { host, port, database, user, password } = target.connection;
  if (!host || !database || !user) throw new Error('the CLI migrator needs host, database and user');
  const url = new URL(`postgresql://${host}:${port ?? 5432}/${encodeURIComponent(database)}`);
  url.username = encodeURIComponent(user);
  if (typeof password === 'string') url.password = encodeURIComponent(password);
  url.searchParams.set('schema', target.schema);
  return url.toString();
}

/** The command line and environment `prisma migrate deploy` runs with for one target. */
export function migrateDeployCommand(target: MigrationTarget, configFile: string): { command: string; args: string[]; env: NodeJS.ProcessEnv } {
  return {
    command: process.execPath,
    args: [require.resolve('prisma/build/index.js'), 'migrate', 'deploy', '--config', configFile],
    env: { ...process.env, DATABASE_URL: schemaUrl(target), PRISMA_HIDE_UPDATE_MESSAGE: '1' },
  };
}

/**
 * Spawns `prisma migrate deploy` against the target schema's URL. For deployments where
 * Prisma's native schema engine is installed (it cannot be downloaded everywhere); it reads and
 * leaves the same `_prisma_migrations` rows as the in-process migrator. Prisma records a
 * migration's start, runs it and marks it finished in separate statements: a process killed in
 * between leaves a row that `prisma migrate resolve` must settle (docs/decisions/0008).
 * Select with MIGRATOR=cli.
 */
export class CliMigrator implements Migrator {
  readonly kind = 'cli';

  /** configFile: prisma/tenant.config.ts or prisma/platform.config.ts. */
  constructor(private readonly configFile: string) {
    // The CLI is a development dependency (production installs and the image leave out its
    // ~200 MB); say so at start-up rather than at the first migration.
    try {
      require.resolve('prisma/build/index.js');
    } catch {
      throw new Error('MIGRATOR=cli needs the prisma CLI and its native schema engine (npm install prisma); the default MIGRATOR=in-process needs neither');
    }
  }

  async migrate(target: MigrationTarget, folder: MigrationFolder): Promise<MigrationOutcome> {
    const before = await this.appliedMigrations(target);
    const { command, args, env } = migrateDeployCommand(target, path.resolve(PROJECT_ROOT, this.configFile));
    const { code, output } = await new Promise<{ code: number | null; output: string }>((resolve, reject) => {
      const child = spawn(command, args, { cwd: PROJECT_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
      child.on('error', reject);
      child.on('close', (exitCode) => resolve({ code: exitCode, output }));
    });
    if (code !== 0) {
      const reason = /Error: (P\d{4})/.exec(output)?.[1] ?? `prisma migrate deploy exited with ${code}`;
      throw new MigrationError(`prisma migrate deploy failed: ${reason}`, null, reason);
    }
    const after = await this.appliedMigrations(target);
    // The schema's newest applied migration (newer than the folder's when a newer release ran).
    const newest = [...after].sort().at(-1) ?? null;
    return { applied: after.filter((name) => !before.includes(name)), version: newest ?? latestMigrationName(folder) };
  }

  private async appliedMigrations(target: MigrationTarget): Promise<string[]> {
    const client = new pg.Client(target.connection);
    client.on('error', () => undefined); // a lost connection fails the query instead of the process
    await client.connect();
    try {
      const table = await client.query<{ present: boolean }>(`SELECT to_regclass('_prisma_migrations') IS NOT NULL AS present`);
      if (!table.rows[0]?.present) return [];
      const rows = await client.query<{ migration_name: string }>(
        'SELECT migration_name FROM _prisma_migrations WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL',
      );
      return rows.rows.map((row) => row.migration_name);
    } finally {
      await client.end();
    }
  }
}
