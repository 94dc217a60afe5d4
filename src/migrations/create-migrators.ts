import type { Config } from '../config/config';
import { PLATFORM_PRISMA_SCHEMA, TENANT_PRISMA_SCHEMA } from '../config/paths';
import { CliMigrator } from './cli-migrator';
import type { Migrator } from './migrator';
import { WasmMigrator } from './wasm-migrator';

/** The platform's and the tenants' migrators, of the kind `MIGRATOR` names. */
export function createMigrators(kind: Config['migrator']): { platform: Migrator; tenant: Migrator } {
  return kind === 'cli'
    ? { platform: new CliMigrator('prisma/platform.config.ts'), tenant: new CliMigrator('prisma/tenant.config.ts') }
    : { platform: new WasmMigrator(PLATFORM_PRISMA_SCHEMA), tenant: new WasmMigrator(TENANT_PRISMA_SCHEMA) };
}
