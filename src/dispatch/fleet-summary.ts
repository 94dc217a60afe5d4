import { Prisma, type TripStatus, type VehicleStatus } from '../generated/prisma/tenant/client';
import type { TenantSql } from '../tenancy/tenant-sql';
import { TRIP_STATUSES } from './trip-workflow';

const VEHICLE_STATUSES: readonly VehicleStatus[] = ['ACTIVE', 'MAINTENANCE', 'RETIRED'];

export interface FleetSummary {
  vehiclesByStatus: { status: VehicleStatus; count: number }[];
  tripsTodayByStatus: { status: TripStatus; count: number }[];
  lateTrips: number;
  driversOnDuty: number;
  day: string;
  timeZone: string;
}

interface SummaryRow {
  vehicles: { status: VehicleStatus; count: number }[];
  tripsToday: { status: TripStatus; count: number }[];
  lateTrips: number;
  driversOnDuty: number;
  day: string;
  timeZone: string;
}

/*
 * One statement, however large the fleet: each figure is an aggregate over an index-backed
 * filter, and "today" is the tenant's day in its own time zone (FleetSettings).
 */
const SUMMARY = Prisma.sql`
  WITH zone AS (SELECT coalesce((SELECT "timezone" FROM "FleetSettings" WHERE "id" = 1), 'UTC') AS tz,
                       make_interval(mins => coalesce((SELECT "lateToleranceMinutes" FROM "FleetSettings" WHERE "id" = 1), 0)) AS tolerance),
  today AS (SELECT date_trunc('day', now() AT TIME ZONE zone.tz) AS local_midnight, zone.tz FROM zone),
  bounds AS (SELECT local_midnight AT TIME ZONE tz AS day_start, (local_midnight + interval '1 day') AT TIME ZONE tz AS day_end, local_midnight, tz FROM today)
  SELECT
    (SELECT coalesce(json_agg(json_build_object('status', v."status", 'count', v.n)), '[]'::json)
       FROM (SELECT "status", count(*)::int AS n FROM "Vehicle" WHERE "deletedAt" IS NULL GROUP BY "status") v) AS "vehicles",
    (SELECT coalesce(json_agg(json_build_object('status', t."status", 'count', t.n)), '[]'::json)
       FROM (SELECT "status", count(*)::int AS n FROM "Trip", bounds
              WHERE "deletedAt" IS NULL AND "plannedDepartureAt" >= bounds.day_start AND "plannedDepartureAt" < bounds.day_end GROUP BY "status") t) AS "tripsToday",
    (SELECT count(*)::int FROM "Trip", zone
      WHERE "deletedAt" IS NULL AND "status" NOT IN ('DELIVERED', 'CANCELLED')
        AND (("status" IN ('DRAFT', 'PLANNED') AND "plannedDepartureAt" + zone.tolerance < now()) OR "plannedArrivalAt" + zone.tolerance < now())) AS "lateTrips",
    (SELECT count(DISTINCT "driverId")::int FROM "Trip" WHERE "deletedAt" IS NULL AND "status" IN ('DISPATCHED', 'IN_TRANSIT')) AS "driversOnDuty",
    (SELECT to_char(local_midnight, 'YYYY-MM-DD') FROM bounds) AS "day",
    (SELECT tz FROM zone) AS "timeZone"`;

function everyStatus<Status extends string>(statuses: readonly Status[], counted: { status: Status; count: number }[]): { status: Status; count: number }[] {
  const counts = new Map(counted.map((entry) => [entry.status, entry.count]));
  return statuses.map((status) => ({ status, count: counts.get(status) ?? 0 }));
}

export async function fleetSummary(sql: TenantSql): Promise<FleetSummary> {
  const [row] = await sql.rows<SummaryRow>(SUMMARY);
  if (!row) throw new Error('the summary statement returned no row');
  return {
    vehiclesByStatus: everyStatus(VEHICLE_STATUSES, row.vehicles),
    tripsTodayByStatus: everyStatus(TRIP_STATUSES, row.tripsToday),
    lateTrips: row.lateTrips,
    driversOnDuty: row.driversOnDuty,
    day: row.day,
    timeZone: row.timeZone,
  };
}
