/*
 * The advisory lock that lets one migrator at a time work on a schema. Prisma's schema engine
 * locks key 72707369 for the whole database, which would queue every tenant's migration behind
 * every other's; we lock (72707369, hash(schema)) instead: still one migrator per schema, tenants
 * in parallel. Releases before this one drove the engine with the same pair, so an instance of
 * an older release and one of this release exclude each other too.
 */

/** Prisma migrate's own advisory-lock key. */
export const PRISMA_MIGRATE_LOCK_KEY = 72707369;

/** A stable signed 32-bit FNV-1a hash, to turn a schema name into an advisory-lock key. */
function int32Hash(text: string): number {
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(text, 'utf8')) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193);
  }
  return hash | 0;
}

/** The two keys of a schema's migrate lock (tests take it to play a migration in progress). */
export function schemaMigrationLock(schema: string): [number, number] {
  return [PRISMA_MIGRATE_LOCK_KEY, int32Hash(schema)];
}
