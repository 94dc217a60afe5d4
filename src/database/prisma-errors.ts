/*
 * Prisma reports constraint violations and connection failures with stable codes. Recognising
 * them by code (never by message text) lets callers turn them into CONFLICT / NOT_FOUND /
 * SERVICE_UNAVAILABLE errors.
 */

interface PrismaKnownError {
  code: string;
  meta?: Record<string, unknown>;
}

function isPrismaKnownError(error: unknown): error is PrismaKnownError {
  return (
    error instanceof Error &&
    error.name === 'PrismaClientKnownRequestError' &&
    typeof (error as { code?: unknown }).code === 'string'
  );
}

/** What a constraint-violation error says about the constraint it hit. */
export interface ViolatedConstraint {
  /** The constraint's (or unique index's) name, when the error gives it. */
  name: string | null;
  /** Its columns, when the error gives them (the pg adapter often gives only the name). */
  fields: string[];
}

/** A constraint as the migrations define it: name and columns. */
export interface ConstraintRef {
  name: string;
  fields: readonly string[];
}

const unquote = (field: unknown) => String(field).replaceAll('"', '');

/*
 * Prisma's engines put the constraint in meta.target (a column list, or an index name); with a
 * driver adapter it is in meta.driverAdapterError.cause.constraint instead, as `{ fields }` or
 * `{ index }` depending on what PostgreSQL reported.
 */
function violatedConstraint(error: PrismaKnownError): ViolatedConstraint {
  const target = error.meta?.target;
  const constraint = (error.meta?.driverAdapterError as { cause?: { constraint?: { fields?: unknown; index?: unknown } } } | undefined)?.cause
    ?.constraint;
  const fields = Array.isArray(target) ? target : Array.isArray(constraint?.fields) ? constraint.fields : [];
  const name = typeof target === 'string' ? target : typeof constraint?.index === 'string' ? constraint.index : null;
  return { name, fields: fields.map(unquote) };
}

/** The unique constraint a P2002 error violated (as far as Prisma says); null for any other error. */
export function uniqueViolation(error: unknown): ViolatedConstraint | null {
  return isPrismaKnownError(error) && error.code === 'P2002' ? violatedConstraint(error) : null;
}

/** The foreign key a P2003 error violated (as far as Prisma says); null for any other error. */
export function foreignKeyViolation(error: unknown): ViolatedConstraint | null {
  return isPrismaKnownError(error) && error.code === 'P2003' ? violatedConstraint(error) : null;
}

/**
 * Whether the violation is of `constraint`: by name when the error gives one, else by columns.
 * An error that says neither matches nothing, so a caller never blames the wrong field.
 */
export function isViolationOf(violation: ViolatedConstraint | null, constraint: ConstraintRef): boolean {
  if (!violation) return false;
  if (violation.name !== null) return violation.name === constraint.name;
  const wanted = new Set(constraint.fields);
  return violation.fields.length === wanted.size && violation.fields.every((field) => wanted.has(field));
}

/** Fields of the unique constraint a P2002 error violated, when Prisma says which. */
export function uniqueViolationFields(error: unknown): string[] | null {
  return uniqueViolation(error)?.fields ?? null;
}

/** A row the write refers to does not exist (any more). */
export function isForeignKeyViolation(error: unknown): boolean {
  return foreignKeyViolation(error) !== null;
}

/**
 * Any unique violation, including one a raw statement hit (Prisma reports those under its own
 * codes; the driver's cause carries SQLSTATE 23505).
 */
export function isUniqueViolation(error: unknown): boolean {
  for (let current = error, depth = 0; current && typeof current === 'object' && depth < 5; depth += 1) {
    const { code, meta, cause } = current as { code?: unknown; meta?: { code?: unknown; driverAdapterError?: { cause?: { originalCode?: unknown; kind?: unknown } } }; cause?: unknown };
    if (code === 'P2002' || code === '23505' || meta?.code === '23505') return true;
    const adapter = meta?.driverAdapterError?.cause;
    if (adapter?.originalCode === '23505' || adapter?.kind === 'UniqueConstraintViolation') return true;
    current = cause;
  }
  return false;
}

/** The row an update or delete addressed does not exist (any more). */
export function isRecordNotFound(error: unknown): boolean {
  return isPrismaKnownError(error) && error.code === 'P2025';
}

/** Prisma's codes for a database it cannot reach, or that went away or timed out mid-request. */
// P2028: a transaction could not start (or finish) in time, e.g. no pooled connection came free.
const PRISMA_UNAVAILABLE = new Set(['P1001', 'P1002', 'P1008', 'P1017', 'P2024', 'P2028']);
/** Driver-adapter error kinds meaning the same. */
const ADAPTER_UNAVAILABLE = new Set(['DatabaseNotReachable', 'ConnectionClosed', 'SocketTimeout', 'TooManyConnections']);
/**
 * What pg (used directly for the platform pool and LISTEN) reports: socket errors, and the
 * SQLSTATEs of a server shutting down, starting up or out of connection slots.
 */
const PG_UNAVAILABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'EPIPE', '57P01', '57P02', '57P03', '53300']);

/**
 * The database could not be reached or dropped the connection: the request may succeed if
 * retried, unlike a bug. Looks through `cause` chains, where drivers and Prisma nest the origin.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  for (let current = error, depth = 0; current && typeof current === 'object' && depth < 5; depth += 1) {
    const { code, meta, kind, message, cause } = current as {
      code?: unknown;
      meta?: { driverAdapterError?: { cause?: { kind?: unknown; originalCode?: unknown } } };
      kind?: unknown;
      message?: unknown;
      cause?: unknown;
    };
    if (typeof code === 'string' && (PRISMA_UNAVAILABLE.has(code) || PG_UNAVAILABLE.has(code))) return true;
    // A session terminated under a request (a move's drain, an operator) comes wrapped with its SQLSTATE.
    const originalCode = meta?.driverAdapterError?.cause?.originalCode;
    if (typeof originalCode === 'string' && PG_UNAVAILABLE.has(originalCode)) return true;
    const adapterKind = meta?.driverAdapterError?.cause?.kind ?? kind;
    if (typeof adapterKind === 'string' && ADAPTER_UNAVAILABLE.has(adapterKind)) return true;
    // pg's own wording when the server closes the socket; it sets no code for it.
    if (typeof message === 'string' && /^Connection terminated/.test(message)) return true;
    current = cause;
  }
  return false;
}

/**
 * PostgreSQL cancelled the statement for running past statement_timeout (SQLSTATE 57014), as
 * Prisma wraps it (its code varies with the query kind; the driver's cause says 57014).
 */
export function isStatementTimeout(error: unknown): boolean {
  for (let current = error, depth = 0; current && typeof current === 'object' && depth < 5; depth += 1) {
    const { code, meta, cause } = current as { code?: unknown; meta?: { driverAdapterError?: { cause?: { code?: unknown; originalCode?: unknown } } }; cause?: unknown };
    if (code === '57014') return true;
    const adapterCause = meta?.driverAdapterError?.cause;
    if (adapterCause?.code === '57014' || adapterCause?.originalCode === '57014') return true;
    current = cause;
  }
  return false;
}

/**
 * A write refused because the session is read-only (SQLSTATE 25006): a tenant whose move has
 * stopped its writes (its role's default_transaction_read_only), met by a write that started
 * before this instance heard of the move.
 */
export function isReadOnlyTransaction(error: unknown): boolean {
  for (let current = error, depth = 0; current && typeof current === 'object' && depth < 5; depth += 1) {
    const { code, meta, cause } = current as { code?: unknown; meta?: { code?: unknown; driverAdapterError?: { cause?: { code?: unknown; originalCode?: unknown } } }; cause?: unknown };
    if (code === '25006' || meta?.code === '25006') return true;
    const adapterCause = meta?.driverAdapterError?.cause;
    if (adapterCause?.code === '25006' || adapterCause?.originalCode === '25006') return true;
    current = cause;
  }
  return false;
}
