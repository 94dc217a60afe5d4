import DataLoader from 'dataloader';
import type { Driver, Vehicle } from '../generated/prisma/tenant/client';
import type { TenantPrisma } from '../tenancy/tenant-client-pool';

/**
 * Per-request batching for nested fields: however many vehicles a page lists, their drivers
 * come from one query (and the reverse for drivers' vehicles). Created per request on the
 * tenant-bound client, so a loader can never hold another tenant's rows.
 */
export interface FleetLoaders {
  vehicleById: DataLoader<string, Vehicle | null>;
  driverById: DataLoader<string, Driver | null>;
  vehicleByDriverId: DataLoader<string, Vehicle | null>;
}

function indexBy<T>(rows: T[], key: (row: T) => string | null): Map<string, T> {
  const map = new Map<string, T>();
  for (const row of rows) {
    const value = key(row);
    if (value !== null) map.set(value, row);
  }
  return map;
}

export function createFleetLoaders(db: TenantPrisma): FleetLoaders {
  return {
    vehicleById: new DataLoader(async (ids) => {
      const rows = indexBy(await db.vehicle.findMany({ where: { id: { in: [...ids] } } }), (row) => row.id);
      return ids.map((id) => rows.get(id) ?? null);
    }),
    driverById: new DataLoader(async (ids) => {
      const rows = indexBy(await db.driver.findMany({ where: { id: { in: [...ids] } } }), (row) => row.id);
      return ids.map((id) => rows.get(id) ?? null);
    }),
    vehicleByDriverId: new DataLoader(async (driverIds) => {
      const rows = indexBy(await db.vehicle.findMany({ where: { driverId: { in: [...driverIds] } } }), (row) => row.driverId);
      return driverIds.map((id) => rows.get(id) ?? null);
    }),
  };
}
