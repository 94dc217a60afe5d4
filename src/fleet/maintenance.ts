import DataLoader from 'dataloader';
import { z } from 'zod';
import { AppError, conflict, ErrorCode, notFound } from '../errors/app-error';
import type { MaintenanceFilter, MaintenanceOrderField } from '../generated/graphql';
import { Prisma, type MaintenanceRecord, type Vehicle } from '../generated/prisma/tenant/client';
import type { ConnectionModel } from '../graphql/pagination';
import { writeAudit } from '../audit/audit-log';
import { changeLocked, lockLive, type TenantTransaction } from '../records/record-changes';
import { readList, type ListArgs, type RecordList } from '../records/record-list';
import type { TenantSql } from '../tenancy/tenant-sql';
import { TenantTable } from '../tenancy/tenant-table';
import { boundedText, currencyCode, parseInput } from './fleet-input';
import { refuseIfOnTheRoad, vehicleRecord } from './fleet-tables';
import type { FleetScope } from './vehicles';

/*
 * Maintenance records. The vehicle's status follows them: opening one puts it in MAINTENANCE
 * (so it cannot be dispatched), closing its last open one puts it back to ACTIVE; both are
 * changes of the vehicle, made under its row lock and kept in its history.
 */

export const maintenanceTable = new TenantTable<MaintenanceRecord>('MaintenanceRecord', Object.values(Prisma.MaintenanceRecordScalarFieldEnum));

/** Filters with the vehicle id already unwrapped from its global id. */
export type MaintenanceListFilter = Omit<MaintenanceFilter, 'vehicleId'> & { vehicleId?: string | null };

export const maintenanceList: RecordList<MaintenanceRecord, MaintenanceListFilter, MaintenanceOrderField> = {
  table: maintenanceTable,
  conditions(filter) {
    const where: Prisma.Sql[] = [];
    if (filter?.vehicleId) where.push(Prisma.sql`t."vehicleId" = ${filter.vehicleId}::uuid`);
    if (filter?.open === true) where.push(Prisma.sql`t."closedAt" IS NULL`);
    if (filter?.open === false) where.push(Prisma.sql`t."closedAt" IS NOT NULL`);
    if (filter?.kind) where.push(Prisma.sql`t."kind" = ${filter.kind}::"MaintenanceKind"`);
    if (filter?.openedFrom) where.push(Prisma.sql`t."openedAt" >= ${filter.openedFrom}`);
    if (filter?.openedTo) where.push(Prisma.sql`t."openedAt" < ${filter.openedTo}`);
    return where;
  },
  orders: {
    CREATED_AT: { column: 'id' },
    OPENED_AT: { column: 'openedAt', kind: 'timestamp' },
    UPDATED_AT: { column: 'updatedAt', kind: 'timestamp' },
  },
};

export function listMaintenance({ sql }: FleetScope, args: ListArgs<MaintenanceListFilter, MaintenanceOrderField>): Promise<ConnectionModel<MaintenanceRecord>> {
  return readList(sql, maintenanceList, args);
}

export const MAX_MAINTENANCE_PER_VEHICLE = 50;

/** Per request: a page of vehicles' recent records in one statement (a window per vehicle). */
export function maintenanceOfVehicles(sql: TenantSql, first: number, open: boolean | null | undefined): DataLoader<string, MaintenanceRecord[]> {
  return new DataLoader(async (vehicleIds) => {
    const where = open === true ? [Prisma.sql`t."closedAt" IS NULL`] : open === false ? [Prisma.sql`t."closedAt" IS NOT NULL`] : [];
    const rows = await maintenanceTable.newestPerKey(sql, 'vehicleId', vehicleIds, first, where);
    const byVehicle = new Map<string, MaintenanceRecord[]>(vehicleIds.map((id) => [id, []]));
    for (const row of rows) byVehicle.get(row.vehicleId)?.push(row);
    return vehicleIds.map((id) => byVehicle.get(id) ?? []);
  });
}

const currency = currencyCode;
const cost = z.number().int().min(0, 'must not be negative').max(2_000_000_000, 'is implausibly large');
const absent = (value: unknown): value is null | undefined => value === null || value === undefined;
const costNeedsCurrency = (input: { costMinorUnits?: number | null; currency?: string | null }) => absent(input.costMinorUnits) || !absent(input.currency);
const COST_ISSUE = { message: 'is required with costMinorUnits', path: ['currency'] };

const openSchema = z
  .object({
    vehicleId: z.string(),
    kind: z.enum(['SERVICE', 'REPAIR', 'INSPECTION', 'TIRES', 'OTHER']),
    description: boundedText(2_000),
    odometerKm: z.number().int().min(0, 'must not be negative').max(10_000_000, 'is implausibly large').nullish(),
    costMinorUnits: cost.nullish(),
    currency: currency.nullish(),
  })
  .refine(costNeedsCurrency, COST_ISSUE);

const closeSchema = z.object({ id: z.string(), costMinorUnits: cost.nullish(), currency: currency.nullish() }).refine(costNeedsCurrency, COST_ISSUE);

/** Moves the locked vehicle to `status` (a recorded change), unless it is there already. */
async function setVehicleStatus(tx: TenantTransaction, vehicle: Vehicle, status: Vehicle['status'], scope: FleetScope): Promise<void> {
  if (vehicle.status === status) return;
  const after = await changeLocked(tx, vehicleRecord, vehicle, scope.actor, (inner) =>
    inner.vehicle.update({ where: { id: vehicle.id }, data: { status, version: { increment: 1 } } }),
  );
  scope.loaders.vehicleById.clear(vehicle.id).prime(vehicle.id, after);
}

export async function openMaintenance(scope: FleetScope, input: object): Promise<MaintenanceRecord> {
  const { vehicleId, ...data } = parseInput(openSchema, input);
  return scope.db.$transaction(async (tx) => {
    const vehicle = await lockLive(tx, vehicleRecord, vehicleId);
    if (vehicle.status === 'RETIRED') throw conflict('A RETIRED vehicle is not maintained; change its status first', 'vehicleId');
    await refuseIfOnTheRoad(tx, { vehicleId });
    const record = await tx.maintenanceRecord.create({ data: { vehicleId, ...data } });
    await writeAudit(tx, scope.actor, { action: 'maintenance.opened', targetType: 'MaintenanceRecord', targetId: record.id, metadata: { vehicleId, kind: data.kind } });
    await setVehicleStatus(tx, vehicle, 'MAINTENANCE', scope);
    return record;
  });
}

export async function closeMaintenance(scope: FleetScope, input: object): Promise<MaintenanceRecord> {
  const { id, costMinorUnits, currency: code } = parseInput(closeSchema, input);
  return scope.db.$transaction(async (tx) => {
    const found = await tx.maintenanceRecord.findUnique({ where: { id }, select: { vehicleId: true } });
    if (!found) throw notFound('Maintenance record');
    // The vehicle's lock first, as openMaintenance takes it: one order, no deadlock.
    const vehicle = await lockLive(tx, vehicleRecord, found.vehicleId).catch((error: unknown) => {
      if (error instanceof AppError && error.code === ErrorCode.NOT_FOUND) throw conflict('The vehicle of this record was deleted; restore it first');
      throw error;
    });
    const closed = await tx.maintenanceRecord.updateMany({
      where: { id, closedAt: null },
      data: { closedAt: new Date(), ...(absent(costMinorUnits) ? {} : { costMinorUnits, currency: code }) },
    });
    if (closed.count === 0) throw conflict('This maintenance record is already closed');
    await writeAudit(tx, scope.actor, { action: 'maintenance.closed', targetType: 'MaintenanceRecord', targetId: id, metadata: { vehicleId: vehicle.id } });
    const stillOpen = await tx.maintenanceRecord.count({ where: { vehicleId: vehicle.id, closedAt: null } });
    if (stillOpen === 0 && vehicle.status === 'MAINTENANCE') await setVehicleStatus(tx, vehicle, 'ACTIVE', scope);
    return tx.maintenanceRecord.findUniqueOrThrow({ where: { id } });
  });
}
