import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

/*
 * Citus schema-based sharding readiness (docs/runbooks/citus.md): every tenant schema is meant
 * to become a Citus distributed schema, placed whole on one worker. Citus is not installable on
 * these machines, so this test reads every migrations/tenant/<name>/migration.sql and refuses
 * what a distributed schema does not allow, before a migration that would break
 * `citus_schema_distribute` (or fail on a distributed tenant) is merged.
 *
 * Each rule names where its limit comes from. Short names used below:
 *   [sbs.c]      citusdata/citus, src/backend/distributed/commands/schema_based_sharding.c
 *                (the checks citus_schema_distribute and CREATE TABLE in a distributed schema run)
 *   [table.c]    citusdata/citus, src/backend/distributed/commands/table.c
 *   [models]     https://docs.azure.cn/cosmos-db/postgresql/concepts-sharding-models
 *                (Citus 12 sharding models: "no foreign keys between distributed schemas")
 *   [workarounds] https://docs.citusdata.com/en/stable/develop/reference_workarounds.html
 *                ("Limitations", general: rule system, multi-level partitioning, sequences
 *                smaller than BIGINT)
 *   [pg-logrep]  https://www.postgresql.org/docs/current/logical-replication-restrictions.html
 *   [move]       citusdata/citus_docs, develop/api_udf.rst, citus_move_shard_placement
 *   [regress]    citusdata/citus, src/test/regress/sql/citus_schema_distribute_undistribute.sql
 *                (what Citus's own tests distribute successfully)
 * Where the documentation found says nothing (functions, other type forms), the rule is this project's
 * conservative choice and says so; the runbook lists those as "not verified".
 *
 * The parsing is deliberately simple: comments and literals are blanked, statements are split
 * at top-level semicolons, and each rule is a regular expression over one statement. The
 * migrations are Prisma-generated plus a few hand-added lines, which this handles; every rule is
 * also run against a bad snippet below, so a rule that can no longer fail is noticed.
 */

const TENANT_MIGRATIONS = path.resolve(__dirname, '../../migrations/tenant');

interface Statement {
  /** The statement with comments removed, literals kept (for messages). */
  text: string;
  /** The same with string literals blanked to '' (for matching), whitespace collapsed. */
  code: string;
  /** `code` with every quoted identifier replaced by "x", for keyword rules (a column named "serial" is no serial). */
  keywords: string;
  /** The string literals' contents, in order (nextval('...') targets). */
  literals: string[];
}

/** Splits SQL into statements at semicolons outside quotes, comments and dollar-quoted bodies. */
function splitStatements(sql: string): Statement[] {
  const statements: Statement[] = [];
  let text = '';
  let code = '';
  let literals: string[] = [];
  let i = 0;
  const flush = () => {
    const collapsed = code.replace(/\s+/g, ' ').trim();
    if (collapsed !== '') statements.push({ text: text.trim(), code: collapsed, keywords: collapsed.replace(/"[^"]*"/g, '"x"'), literals });
    text = '';
    code = '';
    literals = [];
  };
  while (i < sql.length) {
    const char = sql[i]!;
    const rest = sql.slice(i);
    if (rest.startsWith('--')) {
      const end = sql.indexOf('\n', i);
      i = end === -1 ? sql.length : end;
      continue;
    }
    if (rest.startsWith('/*')) {
      const end = sql.indexOf('*/', i + 2);
      i = end === -1 ? sql.length : end + 2;
      code += ' ';
      continue;
    }
    if (char === "'") {
      let j = i + 1;
      let value = '';
      while (j < sql.length) {
        if (sql[j] === "'" && sql[j + 1] === "'") {
          value += "'";
          j += 2;
        } else if (sql[j] === "'") {
          break;
        } else {
          value += sql[j]!;
          j += 1;
        }
      }
      text += sql.slice(i, j + 1);
      code += "''";
      literals.push(value);
      i = j + 1;
      continue;
    }
    const dollar = /^\$[A-Za-z_]*\$/.exec(rest);
    if (dollar) {
      // A function body is code of its own; it is kept out of matching (the CREATE FUNCTION
      // around it is refused anyway) so that a ';' inside does not split the statement.
      const end = sql.indexOf(dollar[0], i + dollar[0].length);
      const stop = end === -1 ? sql.length : end + dollar[0].length;
      text += sql.slice(i, stop);
      code += ' $body$ ';
      i = stop;
      continue;
    }
    if (char === '"') {
      const end = sql.indexOf('"', i + 1);
      const stop = end === -1 ? sql.length : end + 1;
      text += sql.slice(i, stop);
      code += sql.slice(i, stop);
      i = stop;
      continue;
    }
    if (char === ';') {
      flush();
      i += 1;
      continue;
    }
    text += char;
    code += char;
    i += 1;
  }
  flush();
  return statements;
}

/** What the tenant migrations (up to and including the one being checked) have created. */
interface TenantObjects {
  tables: Set<string>;
}

interface Rule {
  id: string;
  /** Where the limit is stated (see the key at the top). */
  source: string;
  /** A reason if the statement breaks the rule, else null. */
  check(statement: Statement, objects: TenantObjects): string | null;
}

const IDENTIFIER = String.raw`(?:"[^"]+"|[A-Za-z_][A-Za-z0-9_$]*)`;
const unquote = (name: string) => (name.startsWith('"') ? name.slice(1, -1) : name.toLowerCase());

/** Words that may follow a table name without being its alias. */
const NOT_AN_ALIAS = new Set(
  'add alter as cascade check column constraint default do drop for from group having in inner join left limit not on only order owner rename restrict returning right set to union using values where with'.split(' '),
);

/** Aliases a statement gives to tenant tables (`FROM "Vehicle" v`, `"Trip" AS t`). */
function aliasesOf(code: string, objects: TenantObjects): Set<string> {
  const aliases = new Set<string>();
  for (const match of code.matchAll(new RegExp(String.raw`"([^"]+)"\s+(?:AS\s+)?(${IDENTIFIER})`, 'gi'))) {
    const alias = match[2]!;
    if (objects.tables.has(match[1]!) && !NOT_AN_ALIAS.has(alias.toLowerCase())) aliases.add(unquote(alias));
  }
  return aliases;
}

/** Qualifiers a statement may use in `x.y`: its own tables, their aliases, and pg_catalog (on every node). */
function foreignQualifiers(statement: Statement, objects: TenantObjects): string[] {
  const allowed = new Set<string>([...objects.tables, ...aliasesOf(statement.code, objects), 'pg_catalog', 'excluded']);
  const found: string[] = [];
  // A name followed by a dot and another name; numbers (0.5) never start with a letter or quote.
  for (const match of statement.code.matchAll(new RegExp(String.raw`(?<![\w$".])(${IDENTIFIER})\s*\.\s*(?=["A-Za-z_*])`, 'g'))) {
    const qualifier = unquote(match[1]!);
    if (!allowed.has(qualifier)) found.push(match[1]!);
  }
  return found;
}

const RULES: Rule[] = [
  {
    id: 'no-other-schema',
    // [sbs.c] EnsureFKeysForTenantTable / ErrorIfIllegalPartitioningInTenantSchema: a distributed
    // schema's tables may only relate to their own schema (or reference tables); [models]: a query
    // runs on a single node when it uses a single distributed schema. A migration runs unqualified
    // inside the tenant's schema; a name qualified with any other schema ("platform", public,
    // another t_...) reaches outside the tenant's node. For sequences, functions and types of
    // other schemas this is stricter than Citus ([regress] distributes a table whose default is
    // nextval of another schema's sequence: Citus copies such objects to every node), and meant
    // to be: issue 17 asks that nothing be shared between tenant schemas, so one tenant is one
    // schema is one node, and a move or a drop touches nothing else.
    source: '[sbs.c] EnsureFKeysForTenantTable; [models] "single distributed schema per query"',
    check(statement, objects) {
      const qualifiers = foreignQualifiers(statement, objects);
      if (qualifiers.length > 0) return `names another schema: ${qualifiers.join(', ')}`;
      const sequenceTarget = statement.literals.find((literal, index) => literal.includes('.') && /\b(?:nextval|currval|setval)\s*\(\s*''$/i.test(literalContext(statement, index)));
      return sequenceTarget ? `uses a sequence of another schema: '${sequenceTarget}'` : null;
    },
  },
  {
    id: 'search-path-stays',
    // [sbs.c] ShouldUseSchemaBasedSharding/tenant tables are found by the schema a table is created
    // in; a migration that moves search_path or a table's schema ("set schema" is one of
    // TenantOperationNames, refused for tenant tables) puts objects outside the distributed schema.
    source: '[sbs.c] TenantOperationNames "set schema"',
    check(statement) {
      if (/^SET\s+(?:LOCAL\s+|SESSION\s+)?search_path\b/i.test(statement.keywords)) return 'changes search_path';
      if (/\bset_config\s*\(\s*''/i.test(statement.keywords) && statement.literals.some((literal) => literal === 'search_path')) return 'changes search_path';
      if (/^ALTER\s+\w+(?:\s+\w+)?\s+.*\bSET\s+SCHEMA\b/i.test(statement.keywords)) return 'moves an object to another schema (SET SCHEMA)';
      return null;
    },
  },
  {
    id: 'foreign-keys-inside-schema',
    // [sbs.c] EnsureFKeysForTenantTable: "foreign keys from distributed schemas can only point to
    // the same distributed schema or reference tables in regular schemas"; [models]: "no foreign
    // keys between distributed schemas". This project has no reference tables (the platform
    // schema stays local on the coordinator, docs/runbooks/citus.md), so: own tables only.
    source: '[sbs.c] EnsureFKeysForTenantTable; [models] data modelling requirements',
    check(statement, objects) {
      for (const match of statement.code.matchAll(new RegExp(String.raw`\bREFERENCES\s+(${IDENTIFIER}(?:\s*\.\s*${IDENTIFIER})?)`, 'gi'))) {
        const target = match[1]!;
        if (target.includes('.') || !objects.tables.has(unquote(target))) return `references ${target}, which no tenant migration creates`;
      }
      return null;
    },
  },
  {
    id: 'no-small-sequences',
    // [workarounds] "Citus encodes the node identifier in the sequence generated on every node
    // ... doesn't work for sequences that are smaller than BIGINT, which may result in inserts on
    // worker nodes failing". serial/smallserial and int/smallint sequences or identity columns.
    // Distribution itself accepts them ([regress] distributes a table with a serial column);
    // what fails is an insert run on a worker, which querying from any node would do, so they
    // are refused before anyone relies on them. (bigint sequences and identity columns are
    // allowed: 12.1 changelog, #7131, identity columns in distributed-schema tables.) This
    // project uses UUID keys, so none exist today.
    source: '[workarounds] Limitations: sequences smaller than BIGINT',
    check(statement) {
      if (/\b(?:SMALLSERIAL|SERIAL|SERIAL2|SERIAL4)\b/i.test(statement.keywords)) return 'uses a serial type smaller than bigserial';
      if (/\b(?:SMALLINT|INTEGER|INT|INT2|INT4)\b\s+(?:NOT\s+NULL\s+)?GENERATED\s+(?:ALWAYS|BY\s+DEFAULT)\s+AS\s+IDENTITY/i.test(statement.keywords)) return 'has an identity column smaller than bigint';
      if (/^CREATE\s+(?:TEMP\w*\s+|UNLOGGED\s+)?SEQUENCE\b.*\bAS\s+(?:SMALLINT|INTEGER|INT|INT2|INT4)\b/i.test(statement.keywords)) return 'creates a sequence smaller than bigint';
      return null;
    },
  },
  {
    id: 'no-partitioning-inheritance-foreign-tables',
    // [sbs.c] EnsureTableKindSupportedForTenantSchema: "cannot create a foreign table in a
    // distributed schema", "tables in a distributed schema cannot inherit or be inherited",
    // partitions only with parent and child in the same schema; [workarounds] "Distributing
    // multi-level partitioned tables is not supported"; [table.c] "cannot create tables in a
    // distributed schema using CREATE TABLE OF syntax". Single-level partitioning inside the
    // schema is allowed by Citus; this check refuses all partitioning so that the first
    // partitioned tenant table is a reviewed decision (and the runbook updated), not an accident.
    source: '[sbs.c] EnsureTableKindSupportedForTenantSchema; [table.c] CREATE TABLE OF; [workarounds] multi-level partitioning',
    check(statement) {
      if (/^CREATE\s+FOREIGN\s+TABLE\b/i.test(statement.keywords)) return 'creates a foreign table';
      if (/\bPARTITION\s+OF\b/i.test(statement.keywords)) return 'creates a partition (PARTITION OF)';
      if (/^(?:CREATE|ALTER)\s+TABLE\b.*\b(?:PARTITION\s+BY|ATTACH\s+PARTITION)\b/i.test(statement.keywords)) return 'partitions a table';
      if (/^(?:CREATE|ALTER)\s+TABLE\b.*\bINHERIT(?:S)?\b/i.test(statement.keywords)) return 'uses table inheritance';
      if (new RegExp(String.raw`^CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?${IDENTIFIER}\s+OF\s+`, 'i').test(statement.keywords)) return 'creates a typed table (CREATE TABLE OF)';
      return null;
    },
  },
  {
    id: 'no-unlogged-or-temporary-tables',
    // citus_schema_move moves the schema with citus_move_shard_placement ([sbs.c]), whose default
    // transfer mode streams the tables by logical replication, and [pg-logrep] PostgreSQL does
    // not replicate unlogged tables (and a moved unlogged table would also be empty after a
    // worker crash). A temporary table lives in pg_temp, not the tenant's schema, and
    // [sbs.c] EnsureTenantSchemaNameAllowed: "temporary schema cannot be distributed".
    source: '[sbs.c] citus_schema_move -> citus_move_shard_placement; [pg-logrep]; [sbs.c] temporary schema',
    check(statement) {
      if (/^CREATE\s+UNLOGGED\b/i.test(statement.keywords) || /^ALTER\s+TABLE\b.*\bSET\s+UNLOGGED\b/i.test(statement.keywords)) return 'creates an unlogged table';
      if (/^CREATE\s+(?:GLOBAL\s+|LOCAL\s+)?TEMP(?:ORARY)?\s+/i.test(statement.keywords)) return 'creates a temporary object outside the schema';
      return null;
    },
  },
  {
    id: 'tables-have-primary-keys',
    // citus_schema_move copies a schema's tables by logical replication in its default mode,
    // which requires a replica identity on each table; without one, updates and deletes fail
    // during the move ([move] citusdata/citus_docs develop/api_udf.rst, citus_move_shard_placement,
    // shard_transfer_mode). A primary key is the replica identity Prisma always gives: a tenant
    // table is created with one, so a tenant can be moved while it keeps writing.
    source: '[move] citus_move_shard_placement shard_transfer_mode (replica identity)',
    check(statement) {
      if (!TABLE_CREATED.test(statement.keywords)) return null;
      return /\bPRIMARY\s+KEY\b/i.test(statement.keywords) ? null : 'creates a table without a primary key (no replica identity for a move)';
    },
  },
  {
    id: 'no-materialized-views',
    // [sbs.c] SchemaGetNonShardTableIdList: citus_schema_distribute converts only regular,
    // partition and foreign tables of the schema, and a moved schema is its colocation group's
    // shards; a materialized view is neither, so it would stay behind on the coordinator while the
    // tables it reads move to a worker. (This project's reading of the source; no documentation
    // page found covers materialized views in distributed schemas.)
    source: '[sbs.c] SchemaGetNonShardTableIdList (only tables are distributed); unverified in docs',
    check(statement) {
      return /^(?:CREATE|ALTER)\s+MATERIALIZED\s+VIEW\b/i.test(statement.keywords) ? 'creates a materialized view' : null;
    },
  },
  {
    id: 'no-rules-or-extensions',
    // [workarounds] "The rule system is not supported". [sbs.c] EnsureSchemaCanBeDistributed:
    // "schema ... cannot be distributed since it is the schema of extension" (a migration runs
    // with search_path = the tenant's schema, so CREATE EXTENSION would install into it) and
    // "has table ... which is owned by an extension". Extensions belong to the platform's setup.
    source: '[workarounds] rule system; [sbs.c] EnsureSchemaCanBeDistributed (extension schemas)',
    check(statement) {
      if (/^CREATE\s+(?:OR\s+REPLACE\s+)?RULE\b/i.test(statement.keywords)) return 'creates a rule';
      if (/^(?:CREATE|ALTER)\s+EXTENSION\b/i.test(statement.keywords)) return 'creates or changes an extension';
      return null;
    },
  },
  {
    id: 'no-functions-procedures-triggers',
    // Triggers: [triggers] https://docs.citusdata.com/en/stable/extra/triggers.html, "Citus does
    // not yet support creating triggers on distributed tables" (a distributed schema's tables are
    // distributed single-shard tables). Functions, procedures and DO blocks: the documentation
    // found says nothing about them inside a distributed schema (one copy per tenant that Citus
    // would have to propagate to the schema's worker), so until that is verified on a real
    // cluster tenant migrations keep logic in the server, as they do today: a deliberate,
    // reviewed exception (with the runbook updated) rather than a surprise at distribution time.
    source: '[triggers] "does not yet support creating triggers on distributed tables"; functions: project rule (unverified)',
    check(statement) {
      const created = /^CREATE\s+(?:OR\s+REPLACE\s+)?(?:CONSTRAINT\s+)?(FUNCTION|PROCEDURE|TRIGGER|EVENT\s+TRIGGER|AGGREGATE|OPERATOR)\b/i.exec(statement.keywords);
      if (created) return `creates a ${created[1]!.toLowerCase()}`;
      if (/^DO\b/i.test(statement.keywords)) return 'runs an anonymous code block (DO)';
      return null;
    },
  },
  {
    id: 'types-are-enums-or-composites',
    // Enums and composite types are fine: Citus propagates CREATE TYPE to every node
    // (citusdata/citus src/backend/distributed/README.md, "Schema management": global DDL such
    // as CREATE TYPE goes to all nodes), and [regress] distributes a schema holding an enum and
    // a composite type used by one of its tables. Every tenant migration so far creates enums.
    // Other forms (base types need C functions; ranges and domains bring functions or checks of
    // their own) are not covered by what was found, so they need a review first.
    source: 'citus README "Schema management"; [regress] enum + composite type; other forms unverified',
    check(statement) {
      if (/^CREATE\s+DOMAIN\b/i.test(statement.keywords)) return 'creates a domain';
      if (/^CREATE\s+TYPE\b/i.test(statement.keywords) && !/^CREATE\s+TYPE\s+\S+\s+AS\s*(?:ENUM\s*)?\(/i.test(statement.keywords)) return 'creates a type other than an enum or a composite';
      return null;
    },
  },
];

/** The text around the index-th literal, so a rule can see what function it is passed to. */
function literalContext(statement: Statement, index: number): string {
  let position = -1;
  for (let n = 0; n <= index; n += 1) position = statement.code.indexOf("''", position + 1);
  return statement.code.slice(Math.max(0, position - 40), position + 2);
}

const TABLE_CREATED = new RegExp(String.raw`^CREATE\s+(?:UNLOGGED\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(${IDENTIFIER})\s*[(]`, 'i');
const TABLE_RENAMED = new RegExp(String.raw`^ALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(${IDENTIFIER})\s+RENAME\s+TO\s+(${IDENTIFIER})`, 'i');

interface Violation {
  migration: string;
  rule: string;
  source: string;
  reason: string;
  statement: string;
}

/** Checks migrations in order; tables a migration creates count for it and every later one. */
function checkMigrations(migrations: { name: string; sql: string }[]): Violation[] {
  const objects: TenantObjects = { tables: new Set() };
  const violations: Violation[] = [];
  for (const migration of migrations) {
    const statements = splitStatements(migration.sql);
    // A migration may create a table after the statement that references it (Prisma adds foreign
    // keys at the end, but a hand-written one may not): take its tables first.
    for (const statement of statements) {
      const created = TABLE_CREATED.exec(statement.code);
      if (created && !created[1]!.includes('.')) objects.tables.add(unquote(created[1]!));
      const renamed = TABLE_RENAMED.exec(statement.code);
      if (renamed) objects.tables.add(unquote(renamed[2]!));
    }
    for (const statement of statements) {
      for (const rule of RULES) {
        const reason = rule.check(statement, objects);
        if (reason) violations.push({ migration: migration.name, rule: rule.id, source: rule.source, reason, statement: statement.text.slice(0, 200) });
      }
    }
  }
  return violations;
}

function tenantMigrations(): { name: string; sql: string }[] {
  return readdirSync(TENANT_MIGRATIONS, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort()
    .map((name) => ({ name, sql: readFileSync(path.join(TENANT_MIGRATIONS, name, 'migration.sql'), 'utf8') }));
}

/** Runs one snippet as a migration after the real ones (so their tables count), returning the rules it broke. */
function rulesBrokenBy(sql: string): string[] {
  const real = tenantMigrations();
  const before = checkMigrations(real).length;
  return checkMigrations([...real, { name: 'snippet', sql }])
    .slice(before)
    .map((violation) => violation.rule);
}

describe('tenant migrations are ready for Citus distributed schemas', () => {
  it('reads every tenant migration and finds what they create', () => {
    const migrations = tenantMigrations();
    expect(migrations.length).toBeGreaterThanOrEqual(7);
    const statements = migrations.flatMap((migration) => splitStatements(migration.sql));
    // A splitter that lost statements would make every rule pass vacuously.
    expect(statements.length).toBeGreaterThan(70);
    const tables = new Set(statements.map((statement) => TABLE_CREATED.exec(statement.code)?.[1]).filter(Boolean));
    for (const table of ['"Vehicle"', '"Driver"', '"Trip"', '"AuditEvent"', '"RecordChange"']) expect(tables).toContain(table);
  });

  it('no tenant migration uses what a distributed schema does not allow', () => {
    const violations = checkMigrations(tenantMigrations());
    // On failure, the list says which migration, which rule (and its source) and which statement.
    expect(violations).toEqual([]);
  });

  describe('each rule fails on a bad snippet (and the hand-added lines of today pass)', () => {
    const bad: [rule: string, sql: string][] = [
      ['no-other-schema', 'SELECT "id" FROM "platform"."Tenant";'],
      ['no-other-schema', 'INSERT INTO public.audit_copy SELECT * FROM "AuditEvent";'],
      ['no-other-schema', 'UPDATE "Trip" SET "driverId" = NULL FROM t_other."Driver" d WHERE d."id" = "Trip"."driverId";'],
      ['no-other-schema', `ALTER TABLE "Trip" ALTER COLUMN "version" SET DEFAULT nextval('platform.trip_version');`],
      ['search-path-stays', 'SET search_path = platform;'],
      ['search-path-stays', `SELECT set_config('search_path', 'public', true);`],
      ['search-path-stays', 'ALTER TABLE "Stop" SET SCHEMA archive;'],
      ['foreign-keys-inside-schema', 'ALTER TABLE "Trip" ADD CONSTRAINT "Trip_tenant_fkey" FOREIGN KEY ("tenantId") REFERENCES "Tenant"("id");'],
      ['foreign-keys-inside-schema', 'CREATE TABLE "Fuel" ("id" UUID PRIMARY KEY, "userId" UUID REFERENCES "platform"."User"("id"));'],
      ['no-small-sequences', 'CREATE TABLE "Counter" ("id" SERIAL PRIMARY KEY);'],
      ['no-small-sequences', 'CREATE TABLE "Counter" ("id" INTEGER NOT NULL GENERATED ALWAYS AS IDENTITY);'],
      ['no-small-sequences', 'CREATE SEQUENCE "ticket_seq" AS integer;'],
      ['no-partitioning-inheritance-foreign-tables', `CREATE TABLE "AuditEvent_2027" PARTITION OF "AuditEvent" FOR VALUES FROM ('2027-01-01') TO ('2028-01-01');`],
      ['no-partitioning-inheritance-foreign-tables', 'CREATE TABLE "Ping" ("at" TIMESTAMPTZ NOT NULL) PARTITION BY RANGE ("at");'],
      ['no-partitioning-inheritance-foreign-tables', 'CREATE TABLE "Truck" ("axles" INTEGER) INHERITS ("Vehicle");'],
      ['no-partitioning-inheritance-foreign-tables', 'CREATE FOREIGN TABLE "Remote" ("id" UUID) SERVER other;'],
      ['no-partitioning-inheritance-foreign-tables', 'CREATE TABLE "Typed" OF "some_type";'],
      ['no-unlogged-or-temporary-tables', 'CREATE UNLOGGED TABLE "Scratch" ("id" UUID PRIMARY KEY);'],
      ['no-unlogged-or-temporary-tables', 'CREATE TEMP TABLE "scratch" AS SELECT "id" FROM "Trip";'],
      ['tables-have-primary-keys', 'CREATE TABLE "Ping" ("vehicleId" UUID NOT NULL, "at" TIMESTAMPTZ(3) NOT NULL);'],
      ['no-materialized-views', 'CREATE MATERIALIZED VIEW "TripCounts" AS SELECT "status", count(*) FROM "Trip" GROUP BY "status";'],
      ['no-rules-or-extensions', 'CREATE EXTENSION IF NOT EXISTS pg_trgm;'],
      ['no-rules-or-extensions', 'CREATE RULE "no_delete" AS ON DELETE TO "AuditEvent" DO INSTEAD NOTHING;'],
      ['no-functions-procedures-triggers', `CREATE FUNCTION "touch"() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW."updatedAt" := now(); RETURN NEW; END; $$;`],
      ['no-functions-procedures-triggers', 'CREATE TRIGGER "touch_trip" BEFORE UPDATE ON "Trip" FOR EACH ROW EXECUTE FUNCTION "touch"();'],
      ['no-functions-procedures-triggers', `DO $$ BEGIN PERFORM 1; END $$;`],
      ['types-are-enums-or-composites', 'CREATE TYPE "Window" AS RANGE (subtype = timestamptz);'],
      ['types-are-enums-or-composites', 'CREATE DOMAIN "Plate" AS TEXT CHECK (VALUE <> \'\');'],
    ];
    it.each(bad)('%s refuses: %s', (rule, sql) => {
      expect(rulesBrokenBy(sql)).toContain(rule);
    });

    it('every rule has at least one bad snippet', () => {
      expect(new Set(bad.map(([rule]) => rule))).toEqual(new Set(RULES.map((rule) => rule.id)));
    });

    const good: string[] = [
      `CREATE TYPE "Fuel" AS ENUM ('DIESEL', 'PETROL');`,
      'CREATE TYPE "Money" AS ("amount" BIGINT, "currency" TEXT);',
      'CREATE UNIQUE INDEX "Trip_vehicleId_on_the_road_key" ON "Trip"("vehicleId") WHERE "status" IN (\'DISPATCHED\', \'IN_TRANSIT\');',
      'ALTER TABLE "Stop" ADD CONSTRAINT "Stop_window_check" CHECK ("windowStart" IS NULL OR "windowEnd" >= "windowStart");',
      'ANALYZE "Vehicle", "Driver", "Trip";',
      // Table-qualified columns and aliases of the tenant's own tables are not other schemas.
      'UPDATE "Trip" SET "version" = "Trip"."version" + 1 FROM "Vehicle" v WHERE v."id" = "Trip"."vehicleId";',
      'CREATE TABLE "Counter" ("id" BIGINT NOT NULL GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "ratio" NUMERIC DEFAULT 0.5);',
      // Text that merely looks like SQL inside a literal or comment is not SQL.
      `-- SET search_path = platform; REFERENCES "platform"."User"\nCOMMENT ON TABLE "Trip" IS 'see platform.Tenant; CREATE EXTENSION x';`,
    ];
    it.each(good)('passes: %s', (sql) => {
      expect(rulesBrokenBy(sql)).toEqual([]);
    });
  });
});
