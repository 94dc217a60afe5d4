import {
  GraphQLError,
  TypeInfo,
  getNamedType,
  isInputObjectType,
  parse,
  validate,
  visit,
  visitWithTypeInfo,
  type DocumentNode,
  type GraphQLSchema,
} from 'graphql';
import { changesUnderOperation } from './changes-under-operation';

/*
 * Would a schema change break a partner? Every registered (persisted) operation is a promise to
 * a partner that its hash keeps running; this checks those documents against a schema (the
 * working tree's SDL, before a deploy) with graphql-js's own validation, and lists what they use
 * that the schema marks @deprecated, so removing it later is a decision made knowingly.
 *
 * Reports carry names, hashes, coordinates and graphql-js's messages, never a document's text:
 * the documents are tenants' own, and whoever reads the report (a CI log, a deploy channel) may
 * not see another tenant's queries.
 */

/** One registered operation to check. `scope` is a tenant id, 'global', or where it came from. */
export interface OperationToCheck {
  scope: string;
  /** The tenant's slug, or null for a global operation (or one from a manifest). */
  tenantSlug: string | null;
  /** The registered operation's id (what removePersistedOperations takes); null from a manifest. */
  id: string | null;
  sha256: string;
  operationName: string | null;
  document: string;
}

export interface BreakingProblem {
  message: string;
  /** 1-based line and column in the document, when graphql-js gives one. */
  locations: { line: number; column: number }[];
}

export interface DeprecatedUse {
  /** Schema coordinate: `Type.field`, `Type.field(arg:)`, `Enum.VALUE`, `Input.field`. */
  coordinate: string;
  reason: string;
}

export interface OperationReport {
  operation: Omit<OperationToCheck, 'document'>;
  /** Validation errors (or the parse error): a registered hash that would stop running. */
  broken: BreakingProblem[];
  /** Deprecated fields, arguments, input fields and enum values it uses (each once). */
  deprecated: DeprecatedUse[];
}

export interface CompatibilityReport {
  checked: number;
  /** Operations with at least one problem, in the order given. */
  broken: OperationReport[];
  /** Operations that validate but use deprecated parts. */
  deprecatedOnly: OperationReport[];
}

export interface CheckOptions {
  /**
   * The schema deployed today. With it, an operation that still validates is also checked for
   * what validation cannot see (changes-under-operation.ts): widened types of fields it selects,
   * input types it receives through variables that no longer accept old values.
   */
  base?: GraphQLSchema;
}

/** Checks every operation against the schema; never throws for a bad document. */
export function checkOperations(schema: GraphQLSchema, operations: readonly OperationToCheck[], options: CheckOptions = {}): CompatibilityReport {
  const report: CompatibilityReport = { checked: operations.length, broken: [], deprecatedOnly: [] };
  for (const operation of operations) {
    const result = checkOperation(schema, operation, options);
    if (result.broken.length > 0) report.broken.push(result);
    else if (result.deprecated.length > 0) report.deprecatedOnly.push(result);
  }
  return report;
}

export function checkOperation(schema: GraphQLSchema, operation: OperationToCheck, options: CheckOptions = {}): OperationReport {
  const { document: text, ...summary } = operation;
  let document: DocumentNode;
  try {
    document = parse(text);
  } catch (error) {
    return { operation: summary, broken: [problemOf(error)], deprecated: [] };
  }
  const errors = validate(schema, document);
  const broken = errors.length > 0 ? errors.map(problemOf) : options.base ? changesUnderOperation(options.base, schema, document) : [];
  return { operation: summary, broken, deprecated: deprecatedUses(schema, document) };
}

function problemOf(error: unknown): BreakingProblem {
  if (error instanceof GraphQLError) {
    return { message: error.message, locations: (error.locations ?? []).map(({ line, column }) => ({ line, column })) };
  }
  return { message: error instanceof Error ? error.message : String(error), locations: [] };
}

/**
 * The deprecated parts of the schema a document uses, walked with TypeInfo (graphql-js's
 * NoDeprecatedCustomRule reports the same things, but as message strings; coordinates let the
 * report group and compare them). Parts the schema does not know are skipped: validation
 * reports those.
 */
export function deprecatedUses(schema: GraphQLSchema, document: DocumentNode): DeprecatedUse[] {
  const found = new Map<string, string>();
  const note = (coordinate: string, reason: string | null | undefined) => {
    if (reason !== null && reason !== undefined && !found.has(coordinate)) found.set(coordinate, reason);
  };
  const typeInfo = new TypeInfo(schema);
  visit(
    document,
    visitWithTypeInfo(typeInfo, {
      Field() {
        const field = typeInfo.getFieldDef();
        const parent = typeInfo.getParentType();
        if (field && parent) note(`${parent.name}.${field.name}`, field.deprecationReason);
      },
      Argument() {
        const argument = typeInfo.getArgument();
        const field = typeInfo.getFieldDef();
        const parent = typeInfo.getParentType();
        // Directive arguments have no field here; their directive is the coordinate.
        const directive = typeInfo.getDirective();
        if (!argument) return;
        if (directive) note(`@${directive.name}(${argument.name}:)`, argument.deprecationReason);
        else if (field && parent) note(`${parent.name}.${field.name}(${argument.name}:)`, argument.deprecationReason);
      },
      ObjectField(node) {
        const parentInput = getNamedType(typeInfo.getParentInputType());
        if (!isInputObjectType(parentInput)) return;
        const inputField = parentInput.getFields()[node.name.value];
        if (inputField) note(`${parentInput.name}.${inputField.name}`, inputField.deprecationReason);
      },
      EnumValue() {
        // getEnumValue() is set for enum literals in arguments, input fields and defaults.
        const value = typeInfo.getEnumValue();
        const enumType = getNamedType(typeInfo.getInputType());
        if (value && enumType) note(`${enumType.name}.${value.name}`, value.deprecationReason);
      },
    }),
  );
  return [...found].map(([coordinate, reason]) => ({ coordinate, reason }));
}

/** A manifest in Apollo's persisted-query format (as `generate-persisted-query-manifest` writes). */
export interface PersistedQueryManifest {
  format: 'apollo-persisted-query-manifest';
  version: 1;
  operations: { id: string; name?: string | null; type?: string; body: string }[];
}

/**
 * Reads a manifest's operations. Throws (a mistake in the file, not a schema problem) when the
 * format is not Apollo's or an id is not the sha256 of its body.
 */
export function operationsOfManifest(json: unknown, sha256Hex: (text: string) => string, source: string): OperationToCheck[] {
  const manifest = json as Partial<PersistedQueryManifest> | null;
  if (!manifest || manifest.format !== 'apollo-persisted-query-manifest' || manifest.version !== 1 || !Array.isArray(manifest.operations)) {
    throw new Error(`${source} is not an Apollo persisted-query manifest (format "apollo-persisted-query-manifest", version 1, operations)`);
  }
  return manifest.operations.map((entry, index) => {
    if (typeof entry?.body !== 'string' || typeof entry.id !== 'string') {
      throw new Error(`${source}: operations[${index}] needs an id and a body`);
    }
    const sha256 = sha256Hex(entry.body);
    if (entry.id !== sha256) throw new Error(`${source}: operations[${index}].id is not the sha256 of its body`);
    return { scope: source, tenantSlug: null, id: null, sha256, operationName: entry.name ?? null, document: entry.body };
  });
}
