import { existsSync } from 'node:fs';
import path from 'node:path';

/**
 * The project root: the nearest folder above this file holding package.json. Works the same
 * from `src/` (tsx, jest) and from the compiled `dist/src/`.
 */
function findProjectRoot(start: string): string {
  let dir = start;
  while (!existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`no package.json above ${start}`);
    dir = parent;
  }
  return dir;
}

export const PROJECT_ROOT = findProjectRoot(__dirname);
export const SCHEMA_DIR = path.join(PROJECT_ROOT, 'schema');
export const PLATFORM_MIGRATIONS_DIR = path.join(PROJECT_ROOT, 'migrations', 'platform');
export const TENANT_MIGRATIONS_DIR = path.join(PROJECT_ROOT, 'migrations', 'tenant');
export const PLATFORM_PRISMA_SCHEMA = path.join(PROJECT_ROOT, 'prisma', 'platform.prisma');
export const TENANT_PRISMA_SCHEMA = path.join(PROJECT_ROOT, 'prisma', 'tenant.prisma');
