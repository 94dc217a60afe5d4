// Used by `prisma migrate deploy` when MIGRATOR=cli (src/migrations/cli-migrator.ts), which
// sets DATABASE_URL to the tenant schema's URL (…?schema=t_<slug>) for each run.
import { defineConfig, env } from 'prisma/config';

export default defineConfig({
  schema: './tenant.prisma',
  migrations: { path: '../migrations/tenant' },
  datasource: { url: env('DATABASE_URL') },
});
