import { badInput } from '../errors/app-error';
import { isCanonicalUuid } from '../database/uuid';

/** A Relay connection as resolvers return it; totalCount runs only when selected. */
export interface ConnectionModel<T> {
  edges: { cursor: string; node: T }[];
  pageInfo: { hasNextPage: boolean; hasPreviousPage: boolean; startCursor: string | null; endCursor: string | null };
  totalCount: () => Promise<number>;
}

export const MAX_PAGE_SIZE = 100;

/** Where a page starts: after the row with this id and, for an order other than creation, this sort value. */
export interface PagePosition {
  id: string;
  value: SortValue;
}

/** A sort column's value as a cursor carries it (timestamps as ISO strings). */
export type SortValue = string | number | boolean | null;

/**
 * What an order's key holds, so that a cursor's value is checked before SQL compares it with the
 * column: a forged cursor is BAD_USER_INPUT, never a database error (a 500 anyone could cause).
 */
export type SortKind = { kind: 'timestamp' } | { kind: 'number' } | { kind: 'text' } | { kind: 'enum'; values: readonly unknown[] };

/** A timestamp as a cursor carries it: exactly what Date.toISOString() wrote, in a year PostgreSQL has (1 and on). */
function isCursorTimestamp(value: string): boolean {
  const parsed = new Date(value);
  return !Number.isNaN(parsed.getTime()) && parsed.toISOString() === value && parsed.getUTCFullYear() >= 1;
}

export function isSortValueOf(sort: SortKind, value: SortValue, nullable: boolean): boolean {
  if (value === null) return nullable;
  if (sort.kind === 'number') return typeof value === 'number' && Number.isFinite(value);
  if (sort.kind === 'enum') return sort.values.includes(value);
  if (typeof value !== 'string' || value.includes('\0')) return false;
  return sort.kind === 'text' || isCursorTimestamp(value);
}

/** Refuses a cursor whose value `sort`'s column could not hold. */
export function assertSortValue(sort: SortKind, position: PagePosition, nullable: boolean): void {
  if (!isSortValueOf(sort, position.value, nullable)) throw badInput('after is not a valid cursor', 'after');
}

/** A sort value as a cursor carries it, and back as SQL compares it. */
export function toSortValue(value: unknown): SortValue {
  if (value instanceof Date) return value.toISOString();
  if (value === null || value === undefined) return null;
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return value;
  throw new Error(`a sort column holds a ${typeof value}; declare only scalar columns as orders`);
}

export interface PageRequest {
  take: number;
  /** The order the cursor was made for: `id` order (creation) is the empty string. */
  order: string;
  after: PagePosition | undefined;
}

/** The order of a list: rows by id (UUIDv7, so creation order), its default. */
export const CREATION_ORDER = '';

/**
 * Validates first/after for a list read in `order` (CREATION_ORDER, or a name such as
 * "plate ASC"). A cursor holds its order: one made for another order is refused, since
 * its position means nothing there.
 */
export function pageRequest(first: number | null | undefined, after: string | null | undefined, order = CREATION_ORDER): PageRequest {
  const take = first ?? 20;
  if (!Number.isInteger(take) || take < 1 || take > MAX_PAGE_SIZE) {
    throw badInput(`first must be between 1 and ${MAX_PAGE_SIZE}`, 'first');
  }
  return { take, order, after: after ? decodeCursor(after, order) : undefined };
}

/*
 * A cursor is opaque base64url: `cursor:<id>` in creation order (what every list has always
 * answered), `cursor:<order>|<JSON value>|<id>` in any other.
 */
export function encodeCursor(id: string, order = CREATION_ORDER, value: SortValue = null): string {
  const text = order === CREATION_ORDER ? `cursor:${id}` : `cursor:${order}|${JSON.stringify(value)}|${id}`;
  return Buffer.from(text, 'utf8').toString('base64url');
}

const MAX_CURSOR_LENGTH = 600;

export function decodeCursor(cursor: string, order = CREATION_ORDER): PagePosition {
  const invalid = () => badInput('after is not a valid cursor', 'after');
  const decoded = cursor.length <= MAX_CURSOR_LENGTH && /^[A-Za-z0-9_-]+$/.test(cursor) ? Buffer.from(cursor, 'base64url').toString('utf8') : '';
  if (!decoded.startsWith('cursor:')) throw invalid();
  const body = decoded.slice('cursor:'.length);
  const parts = body.split('|');
  const cursorOrder = parts.length === 1 ? CREATION_ORDER : parts[0];
  if (parts.length !== 1 && parts.length < 3) throw invalid();
  if (cursorOrder !== order) {
    throw badInput(`after was made for another order (${cursorOrder || 'creation'}), not this list's (${order || 'creation'}); start again without it`, 'after');
  }
  const id = parts.at(-1) ?? '';
  if (!isCanonicalUuid(id)) throw invalid();
  if (parts.length === 1) return { id, value: null };
  let value: unknown;
  try {
    value = JSON.parse(parts.slice(1, -1).join('|'));
  } catch {
    throw invalid();
  }
  if (value !== null && !['string', 'number', 'boolean'].includes(typeof value)) throw invalid();
  return { id, value: value as SortValue };
}

/**
 * Builds the connection from up to take+1 rows (the extra row only says there is a next page);
 * `sortValueOf` gives a row's value in the page's order (unused in creation order).
 */
export function toConnection<T extends { id: string }>(
  rows: T[],
  page: PageRequest,
  totalCount: () => Promise<number>,
  sortValueOf: (row: T) => SortValue = () => null,
): ConnectionModel<T> {
  const nodes = rows.slice(0, page.take);
  const edges = nodes.map((node) => ({ cursor: encodeCursor(node.id, page.order, page.order === CREATION_ORDER ? null : sortValueOf(node)), node }));
  return {
    edges,
    pageInfo: {
      hasNextPage: rows.length > page.take,
      hasPreviousPage: page.after !== undefined,
      startCursor: edges[0]?.cursor ?? null,
      endCursor: edges.at(-1)?.cursor ?? null,
    },
    totalCount,
  };
}
