import { readFileSync } from 'node:fs';
import { PrismaPg } from '@prisma/adapter-pg';
import {
  bindMigrationAwareSqlAdapterFactory,
  type SqlDriverAdapter,
  type SqlMigrationAwareDriverAdapterFactory,
} from '@prisma/driver-adapter-utils';
import type { MigrationList, SchemaEngine } from '@prisma/schema-engine-wasm' with { 'resolution-mode': 'import' };
import type * as SchemaEngineBindings from '@prisma/schema-engine-wasm/schema_engine_bg' with { 'resolution-mode': 'import' };
import type pg from 'pg';
import type { MigrationFolder } from './migration-files';
import { PRISMA_MIGRATE_LOCK_KEY, schemaMigrationLock } from './migration-lock';

/*
 * Prisma's schema engine (the engine behind `prisma migrate deploy`), as Prisma publishes it
 * compiled to WebAssembly in @prisma/schema-engine-wasm. Prisma's CLI would download a native
 * engine; this runs the same engine in-process, talking to PostgreSQL through a driver adapter.
 */

type Bindings = typeof SchemaEngineBindings;

const BINDINGS_KEY = Symbol.for('fleet-graphql.schema-engine-wasm');

/**
 * The package's entry imports its .wasm as an ES module, which Node 20 only allows behind a
 * flag. We require() the generated JS bindings (an ES module: Node >= 20.19 loads it with
 * require, and the Jest config transforms it), instantiate the .wasm ourselves and hand its
 * exports to the bindings, which is exactly what the entry module does. Once per process.
 */
function loadBindings(): Bindings {
  const cache = globalThis as unknown as Record<symbol, Bindings | undefined>;
  const cached = cache[BINDINGS_KEY];
  if (cached) return cached;
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- typed ESM, loaded by require()
  const bindings = require('@prisma/schema-engine-wasm/schema_engine_bg') as Bindings;
  const wasmPath = require.resolve('@prisma/schema-engine-wasm/schema_engine_bg').replace(/\.js$/, '.wasm');
  const instance = new WebAssembly.Instance(new WebAssembly.Module(readFileSync(wasmPath)), {
    './schema_engine_bg.js': withUnrefTimers(bindings as unknown as WebAssembly.ModuleImports),
  });
  bindings.__wbg_set_wasm(instance.exports);
  (instance.exports.__wbindgen_start as () => void)();
  cache[BINDINGS_KEY] = bindings;
  return bindings;
}

/**
 * The engine arms a timer (10 s, its advisory-lock timeout) for every run and has no import to
 * clear it, so each migration kept the process alive 10 s after it finished (CLI scripts, Jest
 * workers). Its timers only ever race work that holds a connection open, which keeps the
 * process alive anyway, so they need not hold it alive themselves.
 */
function withUnrefTimers(imports: WebAssembly.ModuleImports): WebAssembly.ModuleImports {
  const patched: WebAssembly.ModuleImports = { ...imports };
  for (const key of Object.keys(imports).filter((name) => name.startsWith('__wbg_setTimeout_'))) {
    const original = imports[key] as (callback: () => void, ms: number) => NodeJS.Timeout;
    patched[key] = (callback: () => void, ms: number) => {
      const timer = original(callback, ms);
      timer.unref?.();
      return timer;
    };
  }
  return patched;
}

export function schemaEngineVersion(): string {
  return loadBindings().version();
}

/**
 * Adapts the driver adapter to what migrating one schema of a shared database needs:
 *
 * - `executeScript`: @prisma/adapter-pg splits a script on every `;`, which breaks any
 *   migration holding a function body or a string with a semicolon. We send the whole script as
 *   one simple-protocol query, as the native engine does; PostgreSQL then runs it as one
 *   implicit transaction, so a failing migration leaves nothing half-applied.
 * - the migrate lock: Prisma locks key 72707369 for the whole database, which would queue every
 *   tenant's migration behind every other's. We lock (72707369, hash(schema)) instead: still one
 *   migrator per schema, but tenants migrate in parallel.
 */
function adaptForSchemaMigration(adapter: SqlDriverAdapter, schema: string): SqlDriverAdapter {
  const executeRaw = adapter.executeRaw.bind(adapter);
  adapter.executeRaw = (query) =>
    query.sql.trim() === `SELECT pg_advisory_lock(${PRISMA_MIGRATE_LOCK_KEY})`
      ? executeRaw({ ...query, sql: `SELECT pg_advisory_lock(${schemaMigrationLock(schema).join(', ')})` })
      : executeRaw(query);
  adapter.executeScript = async (script) => {
    await executeRaw({ sql: script, args: [], argTypes: [] });
  };
  return adapter;
}

const PG_CHAR_OID = 18; // the one-byte "char" type of pg_catalog columns such as relkind
const PG_TEXT_OID = 25;

/**
 * The engine's schema describer (used by `diff`) reads catalog columns of type "char", which
 * @prisma/adapter-pg refuses to map ("Column type 'char' could not be deserialized"). Their
 * values arrive as text already, so we report them as text. Only the engine's own pools get this.
 */
function reportCharColumnsAsText(pool: pg.Pool): pg.Pool {
  const query = pool.query.bind(pool) as (config: unknown) => Promise<pg.QueryResult>;
  const patched = async (config: unknown): Promise<pg.QueryResult> => {
    const result = await query(config);
    for (const field of result.fields ?? []) {
      if (field.dataTypeID === PG_CHAR_OID) field.dataTypeID = PG_TEXT_OID;
    }
    return result;
  };
  (pool as unknown as { query: typeof patched }).query = patched;
  return pool;
}

export interface SchemaEngineConnection {
  /** A pool whose connections resolve unqualified names to `schema` (search_path). */
  pool: pg.Pool;
  schema: string;
  /** Only `diff` against a migrations folder needs a shadow schema. */
  shadow?: { pool: pg.Pool; schema: string };
}

function adapterFactory(connection: SchemaEngineConnection): SqlMigrationAwareDriverAdapterFactory {
  const main = new PrismaPg(reportCharColumnsAsText(connection.pool), { schema: connection.schema });
  return {
    provider: main.provider,
    adapterName: main.adapterName,
    connect: async () => adaptForSchemaMigration(await main.connect(), connection.schema),
    connectToShadowDb: async () => {
      if (!connection.shadow) throw new Error('this operation needs a shadow schema');
      const shadow = new PrismaPg(reportCharColumnsAsText(connection.shadow.pool), { schema: connection.shadow.schema });
      return adaptForSchemaMigration(await shadow.connect(), connection.shadow.schema);
    },
  };
}

/**
 * Runs `work` with a schema engine bound to one schema. The engine never closes its adapter, and
 * its migrate lock is a session lock: the caller's pool must be ended afterwards (and should
 * hold a single connection) so the lock is released.
 */
export async function withSchemaEngine<T>(
  connection: SchemaEngineConnection,
  datamodel: string,
  work: (engine: SchemaEngine) => Promise<T>,
): Promise<T> {
  const bindings = loadBindings();
  const engine = await bindings.SchemaEngine.new(
    { datamodels: [['schema.prisma', datamodel]] },
    () => undefined,
    bindMigrationAwareSqlAdapterFactory(adapterFactory(connection)),
  );
  try {
    return await work(engine);
  } finally {
    engine.free();
  }
}

export function toMigrationList(folder: MigrationFolder): MigrationList {
  return {
    baseDir: folder.baseDir,
    lockfile: folder.lockfile,
    shadowDbInitScript: '',
    migrationDirectories: folder.migrations.map((migration) => ({
      path: migration.name,
      migrationFile: { path: 'migration.sql', content: { tag: 'ok', value: migration.sql } },
    })),
  };
}

export const NO_FILTERS = { externalTables: [], externalEnums: [] };
