const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Whether a client-supplied id can be a row id at all. Checked before querying: PostgreSQL would
 * reject a malformed uuid with an error, where the answer should simply be "not found".
 */
export function isUuid(value: string): boolean {
  return UUID.test(value);
}

/** Our own ids as we print them (lower case): for decoding opaque ids and cursors we issued. */
export function isCanonicalUuid(value: string): boolean {
  return value === value.toLowerCase() && UUID.test(value);
}
