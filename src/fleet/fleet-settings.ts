import { z } from 'zod';
import { writeAudit } from '../audit/audit-log';
import { AppError, ErrorCode } from '../errors/app-error';
import { Prisma, type FleetSettings } from '../generated/prisma/tenant/client';
import type { TenantSql } from '../tenancy/tenant-sql';
import { currencyCode, parseInput } from './fleet-input';
import type { FleetScope } from './vehicles';

/** The tenant's one row of fleet settings (seeded at provisioning). */

const SETTINGS_ID = 1;

const updateSettingsSchema = z.object({
  timeZone: z.string().trim().min(1, 'must not be empty').max(64, 'must be at most 64 characters').optional(),
  distanceUnit: z.enum(['KM', 'MI']).optional(),
  currency: currencyCode.optional(),
  lateToleranceMinutes: z.number().int().min(0, 'must not be negative').max(1440, 'must be at most 1440 (a day)').optional(),
  defaultNotificationChannel: z.enum(['EMAIL', 'WEBHOOK', 'NONE']).optional(),
});

export async function readFleetSettings(sql: TenantSql): Promise<FleetSettings> {
  const [settings] = await sql.rows<FleetSettings>(Prisma.sql`SELECT * FROM "FleetSettings" WHERE "id" = ${SETTINGS_ID}`);
  if (!settings) throw new Error('the tenant has no fleet settings row (provisioning seeds it)');
  return settings;
}

/**
 * Changes the settings. A time zone is checked against PostgreSQL's own list, since the
 * database is what reads it (fleetSummary's "today").
 */
export async function updateFleetSettings({ db, actor }: FleetScope, input: object): Promise<FleetSettings> {
  const { timeZone, ...rest } = parseInput(updateSettingsSchema, input);
  return db.$transaction(async (tx) => {
    if (timeZone !== undefined) {
      const [known] = await tx.$queryRaw<{ name: string }[]>`SELECT "name" FROM pg_timezone_names WHERE "name" = ${timeZone} LIMIT 1`;
      if (!known) {
        throw new AppError(ErrorCode.BAD_USER_INPUT, 'timeZone must be an IANA time zone, such as Europe/Paris or UTC', { extensions: { field: 'timeZone' } });
      }
    }
    const data = { ...rest, ...(timeZone === undefined ? {} : { timezone: timeZone }) };
    await writeAudit(tx, actor, { action: 'fleetSettings.updated', targetType: 'FleetSettings', targetId: String(SETTINGS_ID), metadata: { fields: Object.keys(data) } });
    return tx.fleetSettings.update({ where: { id: SETTINGS_ID }, data });
  });
}
