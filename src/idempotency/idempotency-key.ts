import { createHash } from 'node:crypto';
import { AppError, ErrorCode } from '../errors/app-error';

/** The request header a client names a mutation's idempotency key in. */
export const IDEMPOTENCY_KEY_HEADER = 'idempotency-key';
/** Set on an answer that is a stored one, replayed. */
export const IDEMPOTENCY_REPLAYED_HEADER = 'idempotency-replayed';

/** Printable ASCII, 1 to 255 characters: a UUID, a ULID or a client's own reference all fit. */
const KEY_PATTERN = /^[\x20-\x7E]{1,255}$/;

/**
 * The key a request carries, or undefined without the header. A malformed one is refused
 * (400 IDEMPOTENCY_KEY_INVALID) whatever the operation, since a client that sends one believes
 * it is protected. Node joins a repeated header with ", ", which is then one key.
 */
export function idempotencyKeyOf(header: string | string[] | undefined): string | undefined {
  if (header === undefined) return undefined;
  const key = Array.isArray(header) ? header.join(', ') : header;
  if (!KEY_PATTERN.test(key)) {
    throw new AppError(ErrorCode.IDEMPOTENCY_KEY_INVALID, 'Idempotency-Key must be 1 to 255 printable ASCII characters', {
      httpStatus: 400,
    });
  }
  return key;
}

/**
 * What "the same request" means for a key: SHA-256 of the canonical JSON (keys sorted at every
 * level) of the operation's text (a persisted operation's, once resolved), its name and its
 * variables. Variables sent in another key order are the same request; another value is not.
 */
export function requestFingerprint(operation: { query: string; operationName: string | null; variables: unknown }): string {
  return createHash('sha256').update(canonicalJson(operation)).digest('hex');
}

export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((item) => canonicalJson(item === undefined ? null : item)).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, item]) => item !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([name, item]) => `${JSON.stringify(name)}:${canonicalJson(item)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}
