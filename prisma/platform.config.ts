// Used by `prisma migrate deploy` when MIGRATOR=cli (src/migrations/cli-migrator.ts), which
// sets DATABASE_URL to the platform schema's URL (…?schema=platform).
import { defineConfig, env } from 'prisma/config';

export default defineConfig({
  schema: './platform.prisma',
  migrations: { path: '../migrations/platform' },
  datasource: { url: env('DATABASE_URL') },
});
