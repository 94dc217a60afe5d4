import { badInput } from '../errors/app-error';
import { isCanonicalUuid } from '../database/uuid';

/** A Relay connection as resolvers return it; totalCount runs only when selected. */
export interface ConnectionModel<T> {
  edges: { cursor: string; node: T }[];
  pageInfo: { hasNextPage: boolean; hasPreviousPage: boolean; startCursor: string | null; endCursor: string | null };
  totalCount: () => Promise<number>;
}

export const MAX_PAGE_SIZE = 100;

export interface PageRequest {
  take: number;
  /** Row id after which the page starts. */
  afterId: string | undefined;
}

/**
 * Validates first/after. Rows are ordered by id, a UUIDv7 (time-ordered): the order is creation
 * order and stable, and a cursor is simply the last row's id, made opaque.
 */
export function pageRequest(first: number | null | undefined, after: string | null | undefined): PageRequest {
  const take = first ?? 20;
  if (!Number.isInteger(take) || take < 1 || take > MAX_PAGE_SIZE) {
    throw badInput(`first must be between 1 and ${MAX_PAGE_SIZE}`, 'first');
  }
  return { take, afterId: after ? decodeCursor(after) : undefined };
}

export function encodeCursor(id: string): string {
  return Buffer.from(`cursor:${id}`, 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string): string {
  const decoded = /^[A-Za-z0-9_-]{1,100}$/.test(cursor) ? Buffer.from(cursor, 'base64url').toString('utf8') : '';
  const id = decoded.startsWith('cursor:') ? decoded.slice('cursor:'.length) : '';
  if (!isCanonicalUuid(id)) throw badInput('after is not a valid cursor', 'after');
  return id;
}

/** Builds the connection from up to take+1 rows (the extra row only says there is a next page). */
export function toConnection<T extends { id: string }>(
  rows: T[],
  page: PageRequest,
  totalCount: () => Promise<number>,
): ConnectionModel<T> {
  const nodes = rows.slice(0, page.take);
  const edges = nodes.map((node) => ({ cursor: encodeCursor(node.id), node }));
  return {
    edges,
    pageInfo: {
      hasNextPage: rows.length > page.take,
      hasPreviousPage: page.afterId !== undefined,
      startCursor: edges[0]?.cursor ?? null,
      endCursor: edges.at(-1)?.cursor ?? null,
    },
    totalCount,
  };
}
