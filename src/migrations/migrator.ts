import type pg from 'pg';
import type { MigrationFolder } from './migration-files';

/** Where a migration run goes: one PostgreSQL schema, reached as the role that owns it. */
export interface MigrationTarget {
  /**
   * Connection settings for the schema's owner. Its search_path must resolve to `schema`
   * (tenant roles get it from `ALTER ROLE ... SET search_path`).
   */
  connection: pg.ClientConfig;
  schema: string;
}

export interface MigrationOutcome {
  /** Migrations this run applied, oldest first. */
  applied: string[];
  /** Newest migration now recorded as applied in the schema. */
  version: string | null;
}

/**
 * Applies a migrations folder to a schema and leaves Prisma's standard `_prisma_migrations`
 * bookkeeping. Two implementations that read and write the same rows: the in-process
 * transactional migrator (default; each migration and its row commit together, so a crash at
 * any point leaves a retryable schema) and the `prisma migrate deploy` CLI (needs Prisma's
 * native engine installed, and keeps Prisma's own crash window).
 */
export interface Migrator {
  readonly kind: 'in-process' | 'cli';
  migrate(target: MigrationTarget, folder: MigrationFolder): Promise<MigrationOutcome>;
}

/** A migration run failed; `migration` names the one that failed when it is known. */
export class MigrationError extends Error {
  constructor(
    message: string,
    readonly migration: string | null,
    readonly reason: string,
  ) {
    super(message);
    this.name = 'MigrationError';
  }
}
