import { randomBytes } from 'node:crypto';
import type { PlatformPrisma } from '../database/platform-database';

/**
 * This installation's id: 8 random hex characters stored in the platform schema on first start.
 * Tenant role names carry it, since PostgreSQL roles are shared by every database of a server.
 */
export async function ensureInstallationId(prisma: PlatformPrisma): Promise<string> {
  const existing = await prisma.installation.findUnique({ where: { singleton: 1 } });
  if (existing) return existing.id;
  await prisma.installation.createMany({ data: [{ singleton: 1, id: randomBytes(4).toString('hex') }], skipDuplicates: true });
  const created = await prisma.installation.findUniqueOrThrow({ where: { singleton: 1 } });
  return created.id;
}
