import type pg from 'pg';

/**
 * Data every new tenant starts with. Idempotent: a retried provisioning seeds nothing twice.
 * Runs as the tenant's own role, on its search_path.
 */
export async function seedTenant(client: pg.Client): Promise<void> {
  await client.query(
    `INSERT INTO "FleetSettings" ("id", "distanceUnit", "timezone", "updatedAt")
     VALUES (1, 'KM', 'UTC', now())
     ON CONFLICT ("id") DO NOTHING`,
  );
}
