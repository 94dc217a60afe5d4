/*
 * npm run schema:check [-- --schema <dir>] [-- --base <dir>] [-- --manifest <file>]
 *
 * Checks every registered (persisted) operation of every tenant, and the global ones, against
 * the SDL of the working tree (schema/, or --schema <dir>) and lists those a deploy of it would
 * break (graphql-js validation errors: a field removed, an argument's type changed, ...) and
 * those using @deprecated fields, arguments, input fields or enum values. One line per
 * operation and problem: tenant slug (or GLOBAL), operation name, sha256 prefix, the
 * operation's id (to remove it), reason; never a document's text. Exit 1 if any operation is broken, else 0 (deprecated uses are listed but
 * pass). With --base <dir> (the SDL deployed today), operations that still validate are also
 * checked for what validation cannot see: a selected field's type widened, an input type received
 * through a variable that no longer accepts old values (a required field added, say).
 *
 * Operations come from the platform database (DATABASE_URL, or the embedded PostgreSQL of
 * `npm start`, as tenants:migrate finds it), or with --manifest from an Apollo persisted-query
 * manifest file (no database: what CI checks against tests/fixtures/partner-operations.json).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../src/config/config';
import { SCHEMA_DIR } from '../src/config/paths';
import { openEmbeddedDatabase, type EmbeddedDatabase } from '../src/database/embedded-postgres';
import { connectPlatformDatabase } from '../src/database/platform-database';
import { buildContractSchema } from '../src/graphql/schema';
import { GLOBAL_SCOPE, sha256Hex } from '../src/persisted-queries/operation-safelist';
import {
  checkOperations,
  operationsOfManifest,
  type OperationReport,
  type OperationToCheck,
} from '../src/persisted-queries/schema-compatibility';
import { runOperatorCommand } from './operator-command';

const USAGE = 'usage: npm run schema:check [-- --schema <dir>] [-- --base <dir>] [-- --manifest <file>]';
/** Enough of a sha256 to find the operation in `persistedOperations` or a manifest. */
const HASH_PREFIX = 12;
/** A validation message may quote a literal of the document; long ones are cut. */
const MAX_REASON = 300;

function parseArgs(argv: string[]): { schemaDir: string; baseDir: string | null; manifest: string | null } {
  let schemaDir = SCHEMA_DIR;
  let baseDir: string | null = null;
  let manifest: string | null = null;
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i] as string;
    const value = () => {
      const next = argv[++i];
      if (!next || next.startsWith('-')) throw new Error(`${arg} needs a value; ${USAGE}`);
      return path.resolve(next);
    };
    if (arg === '--schema') schemaDir = value();
    else if (arg === '--base') baseDir = value();
    else if (arg === '--manifest') manifest = value();
    else throw new Error(`unknown argument ${arg}; ${USAGE}`);
  }
  return { schemaDir, baseDir, manifest };
}

/** Every registered operation, tenants' and global, with the tenant's slug. */
async function operationsOfDatabase(): Promise<OperationToCheck[]> {
  const config = loadConfig();
  let embedded: EmbeddedDatabase | undefined;
  let databaseUrl = config.databaseUrl;
  if (!databaseUrl) {
    embedded = await openEmbeddedDatabase(config.embeddedPostgres);
    databaseUrl = embedded.databaseUrl;
  }
  const platform = connectPlatformDatabase(databaseUrl, 1);
  try {
    const rows = await platform.prisma.persistedOperation.findMany({
      select: { id: true, scope: true, sha256: true, operationName: true, document: true, tenant: { select: { slug: true } } },
      orderBy: [{ scope: 'asc' }, { createdAt: 'asc' }, { id: 'asc' }],
    });
    return rows.map((row) => ({
      scope: row.scope,
      tenantSlug: row.scope === GLOBAL_SCOPE ? null : (row.tenant?.slug ?? row.scope),
      id: row.id,
      sha256: row.sha256,
      operationName: row.operationName,
      document: row.document,
    }));
  } finally {
    await platform.close();
    await embedded?.stop();
  }
}

/**
 * The columns of one line: whose, which operation, which hash, and (from the database) the
 * operation's id, which removePersistedOperations and removePlatformPersistedOperations take
 * (a platform admin cannot list a tenant's operations through the API).
 */
function columns(report: OperationReport, manifest: boolean): string {
  const { tenantSlug, operationName, sha256, id } = report.operation;
  const whose = manifest ? 'MANIFEST' : (tenantSlug ?? 'GLOBAL');
  return `${whose.padEnd(24)} ${printable(operationName ?? '(anonymous)').padEnd(32)} ${sha256.slice(0, HASH_PREFIX)}${id ? ` ${id}` : ''}`;
}

/**
 * A tenant chose its operations' names (up to 200 characters, line breaks allowed): one line per
 * problem must stay one line, so a name cannot forge lines of the report.
 */
const printable = (text: string) => text.replace(/\p{Cc}/gu, ' ');

const clip = (text: string) => {
  const line = printable(text);
  return line.length > MAX_REASON ? `${line.slice(0, MAX_REASON - 1)}…` : line;
};

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const schema = buildContractSchema(args.schemaDir);
  const operations = args.manifest
    ? operationsOfManifest(JSON.parse(readFileSync(args.manifest, 'utf8')) as unknown, sha256Hex, path.relative(process.cwd(), args.manifest))
    : await operationsOfDatabase();
  const base = args.baseDir ? buildContractSchema(args.baseDir) : undefined;
  const report = checkOperations(schema, operations, base ? { base } : {});
  const manifest = args.manifest !== null;

  for (const operation of report.broken) {
    for (const problem of operation.broken) {
      const at = problem.locations.map(({ line, column }) => `${line}:${column}`).join(', ');
      console.log(`BROKEN     ${columns(operation, manifest)}  ${clip(problem.message)}${at ? ` (at ${at})` : ''}`);
    }
  }
  for (const operation of [...report.broken, ...report.deprecatedOnly]) {
    for (const use of operation.deprecated) {
      console.log(`DEPRECATED ${columns(operation, manifest)}  ${use.coordinate} is deprecated: ${clip(use.reason)}`);
    }
  }
  const tenants = new Set(operations.filter((operation) => operation.tenantSlug !== null).map((operation) => operation.tenantSlug)).size;
  const deprecated = report.broken.filter((operation) => operation.deprecated.length > 0).length + report.deprecatedOnly.length;
  const source = manifest ? `from ${path.relative(process.cwd(), args.manifest as string)}` : `of ${tenants} tenants and global`;
  console.log(
    `schema:check: ${report.checked} registered operations ${source} against ${path.relative(process.cwd(), args.schemaDir) || '.'}` +
      `${args.baseDir ? ` (changes since ${path.relative(process.cwd(), args.baseDir) || '.'})` : ''}: ` +
      `${report.broken.length} broken, ${deprecated} using deprecated parts`,
  );
  process.exitCode = report.broken.length > 0 ? 1 : 0;
}

runOperatorCommand('schema:check', main);
