import type { AuditMetadata } from '../audit/audit-entry';
import { writeAudit } from '../audit/audit-log';
import type { TenantPrincipal } from '../auth/principal';
import { isUniqueViolation } from '../database/prisma-errors';
import { AppError, ErrorCode, notFound } from '../errors/app-error';
import { Prisma, type PrismaClient } from '../generated/prisma/tenant/client';
import type { TenantTable } from '../tenancy/tenant-table';

/*
 * The one way a tenant record changes: the live row is locked, its version checked against the
 * caller's expectedVersion, the change applied, and the fields that changed written to
 * `RecordChange` (who, when, old and new) in the same transaction, with its entry in the audit
 * log (`<type>.<action>`, naming the fields that changed; the values stay in the history).
 * Soft delete and restore go through the same path. Each record type declares itself once (`RecordType`); its own rules
 * (what a change may do, what deleting it also undoes) stay with the type.
 */

export type RecordTypeName = 'Vehicle' | 'Driver' | 'Trip' | 'Stop' | 'TripNote';

/** Rows of a record type: versioned and soft-deleted. */
export interface VersionedRow {
  id: string;
  version: number;
  deletedAt: Date | null;
}

export interface RecordType<Row extends VersionedRow> {
  name: RecordTypeName;
  table: TenantTable<Row>;
  /** Fields unique among live rows (partial unique indexes): a restore that would collide is a CONFLICT on the field. */
  uniqueAmongLive: readonly (keyof Row & string)[];
}

/** Who changes a record, and in which request (the audit log names it). */
export interface Actor {
  actorKind: 'USER' | 'API_KEY';
  actorId: string;
  requestId: string | null;
}

export function actorOf(principal: TenantPrincipal, requestId: string | null): Actor {
  const actorId = principal.kind === 'member' ? principal.userId : principal.keyId;
  return { actorKind: principal.kind === 'member' ? 'USER' : 'API_KEY', actorId, requestId };
}

/** A transaction of the tenant-bound Prisma client. */
export type TenantTransaction = Prisma.TransactionClient;

/** Columns history does not keep: identity and bookkeeping. */
const UNTRACKED = new Set(['id', 'version', 'createdAt', 'updatedAt']);

type JsonScalar = string | number | boolean | null;

function asJson(value: unknown): JsonScalar {
  if (value instanceof Date) return value.toISOString();
  if (value === undefined || value === null) return null;
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return value;
  return JSON.stringify(value);
}

/** { field: [old, new] } for the tracked fields that differ (every field when there was no row before). */
export function changedFields(columns: readonly string[], before: Record<string, unknown> | null, after: Record<string, unknown>): Record<string, [JsonScalar, JsonScalar]> {
  const changes: Record<string, [JsonScalar, JsonScalar]> = {};
  for (const column of columns) {
    if (UNTRACKED.has(column)) continue;
    const old = before ? asJson(before[column]) : null;
    const now = asJson(after[column]);
    if (before === null ? now !== null : old !== now) changes[column] = [old, now];
  }
  return changes;
}

/** How a change is named in the audit log when `<type>.updated` says too little (`trip.transitioned`). */
export interface AuditAs {
  action: string;
  metadata?: AuditMetadata;
}

export async function recordChange<Row extends VersionedRow>(
  tx: TenantTransaction,
  type: RecordType<Row>,
  action: 'CREATED' | 'UPDATED' | 'DELETED' | 'RESTORED',
  actor: Actor,
  before: Row | null,
  after: Row,
  auditAs?: AuditAs,
): Promise<void> {
  const changes = changedFields(type.table.columns, before as Record<string, unknown> | null, after as unknown as Record<string, unknown>);
  const { actorKind, actorId } = actor;
  await tx.recordChange.create({ data: { recordType: type.name, recordId: after.id, version: after.version, action, actorKind, actorId, changes } });
  await writeAudit(tx, actor, {
    action: auditAs?.action ?? `${type.name.charAt(0).toLowerCase()}${type.name.slice(1)}.${action.toLowerCase()}`,
    targetType: type.name,
    targetId: after.id,
    metadata: { version: after.version, fields: Object.keys(changes), ...auditAs?.metadata },
  });
}

const quote = (identifier: string) => `"${identifier.replaceAll('"', '""')}"`;

/** The live row, locked until the transaction ends; NOT_FOUND if none, CONFLICT if `expectedVersion` is stale. */
export async function lockLive<Row extends VersionedRow>(tx: TenantTransaction, type: RecordType<Row>, id: string, expectedVersion?: number | null): Promise<Row> {
  const [row] = await tx.$queryRaw<Row[]>(
    Prisma.sql`SELECT ${Prisma.raw(type.table.columns.map(quote).join(', '))} FROM ${Prisma.raw(quote(type.table.name))} WHERE "id" = ${id}::uuid AND "deletedAt" IS NULL FOR UPDATE`,
  );
  if (!row) throw notFound(type.name);
  if (expectedVersion !== undefined && expectedVersion !== null && expectedVersion !== row.version) {
    throw new AppError(ErrorCode.CONFLICT, `The ${type.name.toLowerCase()} changed meanwhile: it is at version ${row.version}, not ${expectedVersion}`, {
      extensions: { field: 'expectedVersion', currentVersion: row.version },
    });
  }
  return row;
}

type TenantDb = Pick<PrismaClient, '$transaction'>;

/**
 * One change of a live record: `apply` gets the locked row and makes the change, bumping
 * `version` (`version: { increment: 1 }`), and returns the row as it now is; the history is
 * written from the difference. Throws what `apply` throws, having changed nothing.
 */
export async function changeRecord<Row extends VersionedRow>(
  db: TenantDb,
  type: RecordType<Row>,
  id: string,
  options: { actor: Actor; expectedVersion?: number | null; auditAs?: (before: Row, after: Row) => AuditAs },
  apply: (tx: TenantTransaction, before: Row) => Promise<Row>,
): Promise<Row> {
  return db.$transaction(async (tx) => changeLocked(tx, type, await lockLive(tx, type, id, options.expectedVersion), options.actor, apply, options.auditAs));
}

/**
 * The same change inside a transaction that already holds the record's lock (`before`, from
 * lockLive): for changes a change of another record brings about (a driver deleted leaves their
 * vehicle; maintenance moves a vehicle's status).
 */
export async function changeLocked<Row extends VersionedRow>(
  tx: TenantTransaction,
  type: RecordType<Row>,
  before: Row,
  actor: Actor,
  apply: (tx: TenantTransaction, before: Row) => Promise<Row>,
  auditAs?: (before: Row, after: Row) => AuditAs,
): Promise<Row> {
  const after = await apply(tx, before);
  await recordChange(tx, type, 'UPDATED', actor, before, after, auditAs?.(before, after));
  return after;
}

/** A new record and its first history entry, in one transaction. */
export async function createRecord<Row extends VersionedRow>(
  db: TenantDb,
  type: RecordType<Row>,
  actor: Actor,
  create: (tx: TenantTransaction) => Promise<Row>,
  auditAs?: (row: Row) => AuditAs,
): Promise<Row> {
  return db.$transaction(async (tx) => {
    const row = await create(tx);
    await recordChange(tx, type, 'CREATED', actor, null, row, auditAs?.(row));
    return row;
  });
}

/** Sets or clears deletedAt, bumping the version; the row as it now is. */
async function setDeleted<Row extends VersionedRow>(tx: TenantTransaction, type: RecordType<Row>, id: string, deleted: boolean): Promise<Row> {
  const [row] = await tx.$queryRaw<Row[]>(
    Prisma.sql`UPDATE ${Prisma.raw(quote(type.table.name))} SET "deletedAt" = ${deleted ? Prisma.sql`now()` : Prisma.sql`NULL`}, "version" = "version" + 1, "updatedAt" = now()
      WHERE "id" = ${id}::uuid RETURNING ${Prisma.raw(type.table.columns.map(quote).join(', '))}`,
  );
  if (!row) throw notFound(type.name);
  return row;
}

/**
 * Soft-deletes a live record: hidden from lists and lookups until restored (or purged after
 * the retention). `beforeDelete` undoes what the type must not keep pointing at (it may refuse).
 */
export async function softDelete<Row extends VersionedRow>(
  db: TenantDb,
  type: RecordType<Row>,
  id: string,
  options: { actor: Actor; expectedVersion?: number | null; beforeDelete?: (tx: TenantTransaction, row: Row) => Promise<void> },
): Promise<Row> {
  return db.$transaction(async (tx) => {
    const before = await lockLive(tx, type, id, options.expectedVersion);
    await options.beforeDelete?.(tx, before);
    const after = await setDeleted(tx, type, id, true);
    await recordChange(tx, type, 'DELETED', options.actor, before, after);
    return after;
  });
}

/**
 * Brings a soft-deleted record back; CONFLICT naming the field when a live record took its unique
 * value meanwhile. `beforeRestore` may refuse (a plan quota the row would count against again).
 */
export async function restoreRecord<Row extends VersionedRow>(
  db: TenantDb,
  type: RecordType<Row>,
  id: string,
  actor: Actor,
  options: { beforeRestore?: (tx: TenantTransaction, row: Row) => Promise<void> } = {},
): Promise<Row> {
  return db.$transaction(async (tx) => {
    const [before] = await tx.$queryRaw<Row[]>(
      Prisma.sql`SELECT ${Prisma.raw(type.table.columns.map(quote).join(', '))} FROM ${Prisma.raw(quote(type.table.name))} WHERE "id" = ${id}::uuid AND "deletedAt" IS NOT NULL FOR UPDATE`,
    );
    if (!before) throw notFound(`Deleted ${type.name.toLowerCase()}`);
    for (const field of type.uniqueAmongLive) {
      const [taken] = await tx.$queryRaw<{ id: string }[]>(
        Prisma.sql`SELECT "id" FROM ${Prisma.raw(quote(type.table.name))} WHERE ${Prisma.raw(quote(field))} = ${before[field]} AND "deletedAt" IS NULL LIMIT 1`,
      );
      if (taken) throw new AppError(ErrorCode.CONFLICT, `Another ${type.name.toLowerCase()} has this ${field} now; change theirs first`, { extensions: { field } });
    }
    await options.beforeRestore?.(tx, before);
    const after = await setDeleted(tx, type, id, false).catch((error: unknown) => {
      // A live row took the value between the check above and this update: the index decides.
      if (isUniqueViolation(error)) throw new AppError(ErrorCode.CONFLICT, `Another ${type.name.toLowerCase()} took one of this one's unique values meanwhile`);
      throw error;
    });
    await recordChange(tx, type, 'RESTORED', actor, before, after);
    return after;
  });
}
