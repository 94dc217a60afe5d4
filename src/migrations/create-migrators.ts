import type { Config } from '../config/config';
import { CliMigrator } from './cli-migrator';
import type { Migrator } from './migrator';
import { TransactionalMigrator } from './transactional-migrator';

/** The platform's and the tenants' migrators, of the kind `MIGRATOR` names. */
export function createMigrators(kind: Config['migrator']): { platform: Migrator; tenant: Migrator } {
  return kind === 'cli'
    ? { platform: new CliMigrator('prisma/platform.config.ts'), tenant: new CliMigrator('prisma/tenant.config.ts') }
    : { platform: new TransactionalMigrator(), tenant: new TransactionalMigrator() };
}
