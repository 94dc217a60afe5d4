import type { PlatformDatabase } from '../database/platform-database';
import type { PasswordHasher } from './passwords';

/**
 * Makes sure the platform admin named by ADMIN_EMAIL exists. An existing admin is left as is:
 * changing ADMIN_PASSWORD later does not overwrite a password someone may have rotated.
 */
export async function ensureBootstrapAdmin(
  platform: PlatformDatabase,
  passwords: PasswordHasher,
  admin: { email: string; password: string },
): Promise<'created' | 'exists'> {
  const existing = await platform.prisma.platformAdmin.findUnique({ where: { email: admin.email } });
  if (existing) return 'exists';
  await platform.prisma.platformAdmin.upsert({
    where: { email: admin.email },
    create: { email: admin.email, name: 'Platform admin', passwordHash: await passwords.hash(admin.password) },
    update: {},
  });
  return 'created';
}
