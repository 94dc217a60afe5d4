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

/** Fields of the unique constraint a P2002 error violated, when Prisma says which. */
export function uniqueViolationFields(error: unknown): string[] | null {
  if (!isPrismaKnownError(error) || error.code !== 'P2002') return null;
  const target = error.meta?.target;
  if (Array.isArray(target)) return target.map(String);
  const cause = (error.meta?.driverAdapterError as { cause?: { constraint?: { fields?: unknown } } } | undefined)?.cause;
  const fields = cause?.constraint?.fields;
  return Array.isArray(fields) ? fields.map((field) => String(field).replaceAll('"', '')) : [];
}

/** A row the write refers to does not exist (any more). */
export function isForeignKeyViolation(error: unknown): boolean {
  return isPrismaKnownError(error) && error.code === 'P2003';
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
    const { code, meta, kind, message, cause } = current as { code?: unknown; meta?: { driverAdapterError?: { cause?: { kind?: unknown } } }; kind?: unknown; message?: unknown; cause?: unknown };
    if (typeof code === 'string' && (PRISMA_UNAVAILABLE.has(code) || PG_UNAVAILABLE.has(code))) return true;
    const adapterKind = meta?.driverAdapterError?.cause?.kind ?? kind;
    if (typeof adapterKind === 'string' && ADAPTER_UNAVAILABLE.has(adapterKind)) return true;
    // pg's own wording when the server closes the socket; it sets no code for it.
    if (typeof message === 'string' && /^Connection terminated/.test(message)) return true;
    current = cause;
  }
  return false;
}
