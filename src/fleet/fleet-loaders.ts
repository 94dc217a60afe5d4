import DataLoader from 'dataloader';
import type { Driver, Vehicle } from '../generated/prisma/tenant/client';
import type { TenantSql } from '../tenancy/tenant-sql';
import type { TenantTable } from '../tenancy/tenant-table';
import { driverTable, vehicleTable } from './fleet-tables';

/**
 * Per-request batching for nested fields: however many vehicles a page lists, their drivers
 * come from one statement (and the reverse for drivers' vehicles), unless the page brought
 * them along already (see listVehicles). Created per request on the tenant-bound client, so a
 * loader can never hold another tenant's rows.
 */
export interface FleetLoaders {
  vehicleById: DataLoader<string, Vehicle | null>;
  driverById: DataLoader<string, Driver | null>;
  vehicleByDriverId: DataLoader<string, Vehicle | null>;
  /**
   * The relation a page row brought along in its own statement, at hand without a promise: a
   * loader answers even a primed key with a promise, and a page of 20 rows then costs 20
   * promises and 20 deferred objects in graphql-js for values already in memory.
   */
  joined: {
    driverOfVehicle: WeakMap<Vehicle, Driver | null>;
    vehicleOfDriver: WeakMap<Driver, Vehicle | null>;
  };
  /** A loader made on first use and kept for the request under `key` (one per field and arguments). */
  batch<Key, Value>(key: string, create: (sql: TenantSql) => DataLoader<Key, Value>): DataLoader<Key, Value>;
}

function loaderOf<Row extends { id: string }>(sql: TenantSql, table: TenantTable<Row>, key: keyof Row & string): DataLoader<string, Row | null> {
  return new DataLoader(async (keys) => {
    const rows = new Map<unknown, Row>();
    for (const row of await table.whereIn(sql, key, keys)) rows.set(row[key], row);
    return keys.map((value) => rows.get(value) ?? null);
  });
}

export function createFleetLoaders(sql: TenantSql): FleetLoaders {
  // Made on first use: most requests use none of them.
  let batches: Map<string, DataLoader<unknown, unknown>> | undefined;
  return {
    vehicleById: loaderOf(sql, vehicleTable, 'id'),
    driverById: loaderOf(sql, driverTable, 'id'),
    vehicleByDriverId: loaderOf(sql, vehicleTable, 'driverId'),
    joined: { driverOfVehicle: new WeakMap(), vehicleOfDriver: new WeakMap() },
    batch<Key, Value>(key: string, create: (tenantSql: TenantSql) => DataLoader<Key, Value>): DataLoader<Key, Value> {
      batches ??= new Map();
      let loader = batches.get(key) as DataLoader<Key, Value> | undefined;
      if (!loader) {
        loader = create(sql);
        batches.set(key, loader as DataLoader<unknown, unknown>);
      }
      return loader;
    },
  };
}
