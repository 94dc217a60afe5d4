import type pg from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { pipeline } from 'node:stream/promises';
import type { AuditActor } from '../audit/audit-entry';
import { queueAudit } from '../audit/audit-log';
import type { DatabaseCluster } from '../clusters/database-clusters';
import { within } from '../concurrency/within';
import { withCheckedOutClient } from '../database/checked-out-client';
import { AppError, ErrorCode, badInput, conflict, notFound } from '../errors/app-error';
import { Prisma, type TenantMove } from '../generated/prisma/platform/client';
import { latestMigrationName, readMigrationFolder } from '../migrations/migration-files';
import type { TenantClientPool } from '../tenancy/tenant-client-pool';
import type { TenantRecord } from '../tenancy/tenant-directory';
import { quoteIdentifier } from '../tenancy/tenant-naming';
import { describeError } from '../observability/logger';
import { isUuid } from '../database/uuid';
import { dropTenantObjects } from './tenant-database-objects';
import type { TenantMigrationResult, TenantMigrationRunner } from './tenant-migration-runner';
import { buildTenantSchema, type TenantProvisioner, type TenantSchemaDependencies } from './tenant-provisioner';

/** One table as copied: the same on source and target, or the move does not switch. */
export interface MovedTable {
  name: string;
  rows: number;
  checksum: string;
}

export interface MoveOutcome {
  tenant: TenantRecord;
  move: TenantMove;
  readOnlyMs: number;
  durationMs: number;
}

export interface TenantMoverDependencies extends TenantSchemaDependencies {
  provisioner: TenantProvisioner;
  migrations: TenantMigrationRunner;
  tenantClients: TenantClientPool;
  /**
   * How long the source's sessions opened before writes stopped may finish their work (every
   * instance drops its client on the tenant row's notification, so they end as their requests
   * do); those still open then are terminated.
   */
  sessionDrainMs: number;
}

/** The same text for the same rows on PostgreSQL 15 and 18: fixed output settings on both sides. */
const CANONICAL_OUTPUT = `SET TIME ZONE 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; SET extra_float_digits = 1; SET bytea_output = 'hex'`;

/**
 * Moves a tenant between clusters (ADR 0023). The phases, and what a crash in each leaves:
 *
 * 1. Start: the source brought to the newest migration (it cannot migrate once read-only),
 *    then the TenantMove row (COPYING). Writes stop, on every run: the role's new sessions in
 *    the source database default to read-only transactions; then the tenant's `readOnlySince`
 *    is stamped, so mutations answer TENANT_READ_ONLY from the next request on every instance
 *    and every instance drops its client (the row's notification), reconnecting read-only;
 *    sessions opened before the role changed are waited for, then terminated. A crash leaves
 *    the tenant serving reads from its source (and writes too, if it came before the role
 *    changed).
 * 2. Copy: the target's role, schema and migrations (provisioning's own steps), then every
 *    table by COPY, parents first, in ONE target transaction that first empties them, and
 *    verified (row counts and checksums of both sides) before it commits. A crash or a mismatch
 *    leaves the target empty or complete, never half; the tenant still on its source.
 * 3. Switch: one platform transaction points the tenant's row at the target, clears
 *    `readOnlySince` and marks the move SWITCHED. Every instance drops its client on the row's
 *    notification; one that has not heard yet still reaches the source, read-only.
 * 4. Confirm (a separate call): the source's schema and role dropped, the move row deleted.
 *
 * Calling moveTenant again resumes from the phase the row records; cancelTenantMove undoes a
 * move before its switch. All of it holds the tenant's provisioning lock (its slug's), so a
 * move, a createTenant and a purge of one tenant never overlap.
 */
export class TenantMover {
  constructor(private readonly deps: TenantMoverDependencies) {}

  async move(tenantId: string, toCluster: string, by: AuditActor): Promise<MoveOutcome> {
    const startedAt = performance.now();
    const first = await this.findTenant(tenantId);
    return this.deps.provisioner.withSlugLock(first.slug, 'fail', async () => {
      return this.moveLocked(tenantId, toCluster, by, startedAt);
    });
  }

  private async moveLocked(tenantId: string, toCluster: string, by: AuditActor, startedAt: number): Promise<MoveOutcome> {
    const { prisma } = this.deps.platform;
    let tenant = await this.findTenant(tenantId);
    let move = await prisma.tenantMove.findUnique({ where: { tenantId } });
    if (move?.phase === 'SWITCHED' && toCluster === move.fromCluster && toCluster !== move.toCluster) {
      // Going back before confirming: the copy kept on the old cluster becomes the target, emptied
      // and filled again from where the tenant serves now. The row turns round in one statement,
      // so a cut from here on is a move back like any other: moveTenant finishes it,
      // cancelTenantMove undoes it (and drops the old copy, as it drops any target).
      move = await prisma.tenantMove.update({
        where: { tenantId },
        data: { fromCluster: move.toCluster, toCluster: move.fromCluster, phase: 'COPYING', switchedAt: null, verification: Prisma.DbNull },
      });
      this.deps.logger.info({ tenantId, from: move.fromCluster, to: move.toCluster }, 'tenant move turned back before its confirmation');
    }
    if (move && move.toCluster !== toCluster) {
      throw conflict(
        move.phase === 'SWITCHED'
          ? `This tenant moved to "${move.toCluster}" and its old copy waits on "${move.fromCluster}": confirmTenantMove before moving it elsewhere, or moveTenant to "${move.fromCluster}" to go back`
          : `A move of this tenant to "${move.toCluster}" is under way: call moveTenant with that cluster to finish it, or cancelTenantMove`,
        'toCluster',
      );
    }
    if (move?.phase === 'SWITCHED') return { tenant, move, readOnlyMs: 0, durationMs: Math.round(performance.now() - startedAt) };
    if (!move) {
      if (tenant.status !== 'ACTIVE' && tenant.status !== 'SUSPENDED') throw conflict(`Only a provisioned tenant can move; this one is ${tenant.status}`, 'id');
      // Its data is on its way out: moving it would only make the purge reach for it elsewhere.
      if (tenant.purgeAfter) throw conflict('This tenant is scheduled for deletion; cancelTenantDeletion before moving it', 'id');
      if (tenant.cluster === toCluster) throw badInput(`The tenant is on "${toCluster}" already`, 'toCluster');
      this.deps.clusters.assertOpen(toCluster, 'toCluster');
    }
    const source = this.deps.clusters.get(move?.fromCluster ?? tenant.cluster);
    const target = this.deps.clusters.get(toCluster);
    // Before anything stops: both answer, and they are two servers (roles are per server).
    await assertDistinctServers(source, target);
    if (!move) {
      await this.bringSourceUpToDate(tenant);
      // First the row, so a move cut from here on is one admins see (and cancel or finish).
      move = await prisma.tenantMove.create({ data: { tenantId, fromCluster: source.name, toCluster } });
      this.deps.logger.info({ tenantId, from: source.name, to: toCluster }, 'tenant move started');
    }
    tenant = await this.findTenant(tenantId);
    // The target's role, schema and tables need none of the data: built while writes go on.
    await buildTenantSchema(this.deps, tenant, target.name, readMigrationFolder(this.deps.tenantMigrationsDir));
    // A copy kept by an earlier move (going back before confirming) kept its role read-only
    // there: the target takes writes once switched. A new role has nothing to reset.
    await withCheckedOutClient(target.adminPool, (client) => allowWrites(client, tenant.dbRole, target.databaseName));
    const readOnlyFrom = performance.now();
    let tables: MovedTable[];
    try {
      await stopWrites(source, tenant.dbRole, this.deps.sessionDrainMs, async () => {
        // Stamped on every run: the row's notification makes every instance drop its client, so
        // sessions opened before the role turned read-only end with their requests.
        await prisma.tenant.update({ where: { id: tenantId }, data: { readOnlySince: new Date() } });
        this.deps.directory.invalidate(tenantId);
        this.deps.tenantClients.forget(tenantId);
      });
      tables = await copyTenantData(source, target, tenant.schemaName);
    } catch (error) {
      // An error (not a crash) before the switch: the tenant gets its writes back at once
      // rather than waiting, read-only, for someone to notice. A crash leaves the move for
      // moveTenant or cancelTenantMove.
      await this.rollBack(tenant, source.name, target.name).catch((rollbackError: unknown) =>
        this.deps.logger.error({ tenantId, err: describeError(rollbackError) }, 'rolling back a failed move failed; cancelTenantMove finishes it'),
      );
      throw error;
    }
    const switched = await prisma.$transaction(async (tx) => {
      const row = await tx.tenantMove.update({
        where: { tenantId },
        data: { phase: 'SWITCHED', switchedAt: new Date(), verification: tables as unknown as object[] },
      });
      await tx.tenant.update({ where: { id: tenantId }, data: { cluster: target.name, readOnlySince: null } });
      await queueAudit(tx, tenantId, by, {
        action: 'tenant.moved',
        targetType: 'Tenant',
        targetId: tenantId,
        metadata: { from: source.name, to: target.name, tables: tables.length, rows: tables.reduce((sum, table) => sum + table.rows, 0) },
      });
      return row;
    });
    this.deps.directory.invalidate(tenantId);
    this.deps.tenantClients.forget(tenantId);
    const readOnlyMs = Math.round(performance.now() - readOnlyFrom);
    this.deps.logger.info({ tenantId, from: source.name, to: target.name, readOnlyMs }, 'tenant moved; the source waits for confirmTenantMove');
    return { tenant: await this.findTenant(tenantId), move: switched, readOnlyMs, durationMs: Math.round(performance.now() - startedAt) };
  }

  /** After the switch: the source's schema and role go; the move is over. */
  async confirm(tenantId: string): Promise<TenantRecord> {
    const first = await this.findTenant(tenantId);
    return this.deps.provisioner.withSlugLock(first.slug, 'fail', async () => {
      const move = await this.deps.platform.prisma.tenantMove.findUnique({ where: { tenantId } });
      if (!move) throw conflict('This tenant has no move to confirm', 'id');
      if (move.phase !== 'SWITCHED') throw conflict('The move has not switched yet: finish it with moveTenant, or cancelTenantMove', 'id');
      const tenant = await this.findTenant(tenantId);
      await withCheckedOutClient(this.deps.clusters.get(move.fromCluster).adminPool, (client) =>
        dropTenantObjects(client, { roleName: tenant.dbRole, schemaName: tenant.schemaName }),
      );
      await this.deps.platform.prisma.tenantMove.delete({ where: { tenantId } });
      this.deps.logger.info({ tenantId, from: move.fromCluster }, 'tenant move confirmed: source dropped');
      return this.findTenant(tenantId);
    });
  }

  /**
   * Before the switch: the tenant writes on its source again, then the target's schema and role
   * go (as far as the target can be reached: leftovers there are harmless, a later move to it
   * rebuilds and empties them).
   */
  async cancel(tenantId: string): Promise<TenantRecord> {
    const first = await this.findTenant(tenantId);
    return this.deps.provisioner.withSlugLock(first.slug, 'fail', async () => {
      const move = await this.deps.platform.prisma.tenantMove.findUnique({ where: { tenantId } });
      if (!move) throw conflict('This tenant has no move to cancel', 'id');
      if (move.phase === 'SWITCHED') {
        throw conflict(`The move has switched: the tenant serves from "${move.toCluster}". confirmTenantMove drops its old copy; moveTenant to "${move.fromCluster}" goes back`, 'id');
      }
      await this.rollBack(await this.findTenant(tenantId), move.fromCluster, move.toCluster);
      return this.findTenant(tenantId);
    });
  }

  private async rollBack(tenant: TenantRecord, fromCluster: string, toCluster: string): Promise<void> {
    const { prisma } = this.deps.platform;
    await resumeWrites(this.deps.clusters.get(fromCluster), tenant.dbRole, this.deps.sessionDrainMs, async () => {
      await prisma.$transaction([prisma.tenantMove.delete({ where: { tenantId: tenant.id } }), prisma.tenant.update({ where: { id: tenant.id }, data: { readOnlySince: null } })]);
      this.deps.directory.invalidate(tenant.id);
      this.deps.tenantClients.forget(tenant.id);
    });
    this.deps.logger.info({ tenantId: tenant.id, to: toCluster }, 'tenant move undone: writes resumed on the source');
    try {
      await withCheckedOutClient(this.deps.clusters.get(toCluster).adminPool, (client) =>
        dropTenantObjects(client, { roleName: tenant.dbRole, schemaName: tenant.schemaName }),
      );
    } catch (error) {
      this.deps.logger.warn({ tenantId: tenant.id, cluster: toCluster, err: describeError(error) }, "the undone move's target objects could not be dropped; a later move there reuses them");
    }
  }

  private async findTenant(tenantId: string): Promise<TenantRecord> {
    const tenant = isUuid(tenantId) ? await this.deps.platform.prisma.tenant.findUnique({ where: { id: tenantId } }) : null;
    if (!tenant) throw notFound('Tenant');
    return tenant;
  }

  /** The target is built at the newest migration: the source must be there too, or their tables differ. */
  private async bringSourceUpToDate(tenant: TenantRecord): Promise<void> {
    if (tenant.migrationVersion === latestMigrationName(readMigrationFolder(this.deps.tenantMigrationsDir))) return;
    let failed: TenantMigrationResult | undefined;
    await this.deps.migrations.migrateTenants({ tenantIds: [tenant.id] }, (result) => {
      if (result.status === 'FAILED' || result.status === 'SKIPPED') failed = result;
    });
    if (failed) throw new AppError(ErrorCode.CONFLICT, `The tenant could not be migrated before its move (${failed.error ?? failed.status}); nothing was changed`);
  }
}

/** How long each server gets to answer before a move starts. */
const REACHABLE_WITHIN_MS = 3_000;

/**
 * Both servers answer, and they are two: PostgreSQL's system identifier (the same on a server
 * whatever host name or database reached it) differs. One server under two names would share
 * the tenant's role, and the move's end would drop it from under the tenant.
 */
async function assertDistinctServers(source: DatabaseCluster, target: DatabaseCluster): Promise<void> {
  const identify = async (cluster: DatabaseCluster): Promise<string> => {
    const unreachable = () => new AppError(ErrorCode.SERVICE_UNAVAILABLE, `Cluster "${cluster.name}" does not answer; nothing was changed`, { extensions: { retryAfter: 30 } });
    const query = cluster.adminPool.query<{ id: string }>('SELECT system_identifier::text AS id FROM pg_control_system()');
    const { rows } = await within(query, REACHABLE_WITHIN_MS, unreachable).catch((error: unknown) => {
      throw error instanceof AppError ? error : unreachable();
    });
    return rows[0]?.id ?? '';
  };
  const [from, to] = await Promise.all([identify(source), identify(target)]);
  if (from === to) throw badInput(`Clusters "${source.name}" and "${target.name}" are the same PostgreSQL server`, 'toCluster');
}

/**
 * The tenant role's new sessions in the source database run read-only transactions; those
 * opened before may finish for drainMs (every instance closes its client for the tenant on the
 * row's notification), then are terminated. Sessions opened after (reads during the copy) stay.
 */
async function stopWrites(source: DatabaseCluster, roleName: string, drainMs: number, markReadOnly: () => Promise<void>): Promise<void> {
  await withCheckedOutClient(source.adminPool, async (client) => {
    const database = client.escapeIdentifier(source.databaseName);
    await client.query(`ALTER ROLE ${quoteIdentifier(roleName)} IN DATABASE ${database} SET default_transaction_read_only = on`);
    const since = await serverTime(client);
    // Only now: instances that reconnect on the row's notification get read-only sessions.
    await markReadOnly();
    await endSessionsOpenedBefore(client, roleName, source.databaseName, since, drainMs);
  });
}

/** Cancelling: new sessions may write again, then (`after`) the row says so, then the read-only sessions go. */
async function allowWrites(client: pg.PoolClient, roleName: string, databaseName: string): Promise<void> {
  await client.query(`ALTER ROLE ${quoteIdentifier(roleName)} IN DATABASE ${client.escapeIdentifier(databaseName)} RESET default_transaction_read_only`);
}

async function resumeWrites(source: DatabaseCluster, roleName: string, drainMs: number, after: () => Promise<void>): Promise<void> {
  await withCheckedOutClient(source.adminPool, async (client) => {
    await allowWrites(client, roleName, source.databaseName);
    const since = await serverTime(client);
    await after();
    await endSessionsOpenedBefore(client, roleName, source.databaseName, since, drainMs);
  });
}

const POLL_MS = 50;

/** The source server's clock: sessions are compared with their backend_start, on the same clock. */
async function serverTime(client: pg.PoolClient): Promise<Date> {
  return (await client.query<{ now: Date }>('SELECT clock_timestamp() AS now')).rows[0]!.now;
}

/** Sessions opened before `since` (with the role's old setting) finish for drainMs, then are terminated. */
async function endSessionsOpenedBefore(client: pg.PoolClient, roleName: string, databaseName: string, since: Date, drainMs: number): Promise<void> {
  const older = `FROM pg_stat_activity WHERE usename = $1 AND datname = $2 AND backend_start < $3 AND pid <> pg_backend_pid()`;
  const deadline = performance.now() + drainMs;
  for (;;) {
    const { rows } = await client.query<{ open: string }>(`SELECT count(*) AS open ${older}`, [roleName, databaseName, since]);
    if (Number(rows[0]?.open ?? 0) === 0) return;
    if (performance.now() >= deadline) break;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  await client.query(`SELECT pg_terminate_backend(pid) ${older}`, [roleName, databaseName, since]);
  // pg_terminate_backend only signals: wait until they are gone, so no write of theirs can follow.
  for (let waited = 0; waited < 5_000; waited += POLL_MS) {
    const { rows } = await client.query<{ open: string }>(`SELECT count(*) AS open ${older}`, [roleName, databaseName, since]);
    if (Number(rows[0]?.open ?? 0) === 0) return;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  throw new AppError(ErrorCode.SERVICE_UNAVAILABLE, "The tenant's sessions on its source did not end; retry the move", { extensions: { retryAfter: 5 } });
}

/**
 * Copies every table of the tenant's schema from source to target with COPY, parents before
 * children, in one target transaction that empties the tables first and commits only when each
 * table's row count and checksum match the source's. The source is read in one REPEATABLE READ
 * snapshot (its writes are stopped anyway).
 */
async function copyTenantData(source: DatabaseCluster, target: DatabaseCluster, schemaName: string): Promise<MovedTable[]> {
  const schema = quoteIdentifier(schemaName);
  return withCheckedOutClient(source.adminPool, (from, discardSource) =>
    withCheckedOutClient(target.adminPool, async (to) => {
      let sourceDiscarded = false;
      await from.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      await to.query('BEGIN');
      try {
        await from.query(CANONICAL_OUTPUT);
        await to.query(CANONICAL_OUTPUT);
        const tables = await tablesParentsFirst(from, schemaName);
        const targetTables = await tablesParentsFirst(to, schemaName);
        await assertSameMigrations(from, to, schema);
        if (tables.join() !== targetTables.join()) throw new Error('source and target schemas hold different tables');
        // Table names come from the catalog, not from tenant naming: escaped as any identifier.
        if (tables.length > 0) await to.query(`TRUNCATE ${tables.map((name) => `${schema}.${to.escapeIdentifier(name)}`).join(', ')}`);
        const moved: MovedTable[] = [];
        for (const name of tables) {
          const table = `${schema}.${to.escapeIdentifier(name)}`;
          try {
            await pipeline(from.query(copyTo(`COPY ${table} TO STDOUT`)), to.query(copyFrom(`COPY ${table} FROM STDIN`)));
          } catch (error) {
            // A COPY TO cut midway (the target gone, say) leaves the source connection in COPY OUT
            // with nobody reading it: pg-copy-streams does not end it, so the ROLLBACK below
            // would wait behind it for ever, and the source's backend would sit in ClientWrite
            // (holding its snapshot, and stalling every DROP DATABASE on that server, whose
            // barrier it never answers). The connection is closed instead; its backend ends.
            sourceDiscarded = true;
            discardSource(error);
            throw error;
          }
          const [expected, copied] = await Promise.all([tableFingerprint(from, table), tableFingerprint(to, table)]);
          if (expected.rows !== copied.rows || expected.checksum !== copied.checksum) {
            throw new AppError(ErrorCode.SERVICE_UNAVAILABLE, `Table ${name} differs after the copy (${expected.rows} rows at the source, ${copied.rows} at the target); nothing was switched, retry the move`, {
              extensions: { retryAfter: 5 },
            });
          }
          moved.push({ name, ...expected });
        }
        await copySequences(from, to, schemaName);
        await to.query('COMMIT');
        return moved;
      } catch (error) {
        await to.query('ROLLBACK').catch(() => undefined);
        throw error;
      } finally {
        if (!sourceDiscarded) await from.query('ROLLBACK').catch(() => undefined);
      }
    }),
  );
}

/** Row count, and md5 over the rows' md5s in their own order: independent of physical order. */
async function tableFingerprint(client: pg.PoolClient, table: string): Promise<{ rows: number; checksum: string }> {
  const { rows } = await client.query<{ rows: string; checksum: string }>(
    `SELECT count(*) AS rows, md5(coalesce(string_agg(h, '' ORDER BY h), '')) AS checksum FROM (SELECT md5(t::text) AS h FROM ${table} t) hashed`,
  );
  return { rows: Number(rows[0]?.rows ?? 0), checksum: rows[0]?.checksum ?? '' };
}

/** Tables of the schema (not the migrations' bookkeeping, which each side has of its own), parents before children. */
async function tablesParentsFirst(client: pg.PoolClient, schemaName: string): Promise<string[]> {
  const tables = await client.query<{ name: string }>(
    `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition AND c.relname <> '_prisma_migrations' ORDER BY c.relname`,
    [schemaName],
  );
  const references = await client.query<{ child: string; parent: string }>(
    `SELECT child.relname AS child, parent.relname AS parent FROM pg_constraint k
       JOIN pg_class child ON child.oid = k.conrelid JOIN pg_class parent ON parent.oid = k.confrelid
       JOIN pg_namespace n ON n.oid = child.relnamespace
      WHERE k.contype = 'f' AND n.nspname = $1 AND child.oid <> parent.oid`,
    [schemaName],
  );
  const ordered: string[] = [];
  const placed = new Set<string>();
  const remaining = tables.rows.map((row) => row.name);
  while (remaining.length > 0) {
    const ready = remaining.filter((name) => references.rows.every((ref) => ref.child !== name || placed.has(ref.parent) || !remaining.includes(ref.parent)));
    if (ready.length === 0) throw new Error('foreign keys in the tenant schema form a cycle');
    for (const name of ready) {
      ordered.push(name);
      placed.add(name);
      remaining.splice(remaining.indexOf(name), 1);
    }
  }
  return ordered;
}

async function assertSameMigrations(from: pg.PoolClient, to: pg.PoolClient, schema: string): Promise<void> {
  const applied = `SELECT coalesce(string_agg(migration_name, ',' ORDER BY migration_name), '') AS names FROM ${schema}."_prisma_migrations" WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL`;
  const [source, target] = await Promise.all([from.query<{ names: string }>(applied), to.query<{ names: string }>(applied)]);
  if (source.rows[0]?.names !== target.rows[0]?.names) {
    throw new AppError(ErrorCode.CONFLICT, 'The source and the target are at different migrations (a deploy came in between?): cancelTenantMove, then move again');
  }
}

/** Sequences (none in today's tenant schema) continue where the source's were. */
async function copySequences(from: pg.PoolClient, to: pg.PoolClient, schemaName: string): Promise<void> {
  const { rows } = await from.query<{ name: string; last_value: string | null }>(
    'SELECT sequencename AS name, last_value FROM pg_sequences WHERE schemaname = $1',
    [schemaName],
  );
  for (const sequence of rows) {
    if (sequence.last_value === null) continue;
    await to.query('SELECT setval($1::regclass, $2::bigint, true)', [`${quoteIdentifier(schemaName)}.${to.escapeIdentifier(sequence.name)}`, sequence.last_value]);
  }
}
