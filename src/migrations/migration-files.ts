import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

/** A Prisma migrations folder, read from disk in the shape the schema engine takes. */
export interface MigrationFolder {
  baseDir: string;
  lockfile: { path: string; content: string | null };
  migrations: { name: string; directory: string; sql: string }[];
}

const LOCKFILE = 'migration_lock.toml';

export function readMigrationFolder(baseDir: string): MigrationFolder {
  if (!existsSync(baseDir)) {
    throw new Error(`migrations folder not found: ${baseDir}`);
  }
  const lockPath = path.join(baseDir, LOCKFILE);
  const migrations = readdirSync(baseDir)
    .filter((entry) => statSync(path.join(baseDir, entry)).isDirectory())
    .sort()
    .map((name) => {
      const directory = path.join(baseDir, name);
      return { name, directory, sql: readFileSync(path.join(directory, 'migration.sql'), 'utf8') };
    });
  return {
    baseDir,
    lockfile: { path: lockPath, content: existsSync(lockPath) ? readFileSync(lockPath, 'utf8') : null },
    migrations,
  };
}

/** Name of the newest migration in a folder: the version a fully migrated schema reports. */
export function latestMigrationName(folder: MigrationFolder): string | null {
  return folder.migrations.at(-1)?.name ?? null;
}
