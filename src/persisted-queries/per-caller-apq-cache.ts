import type { ApolloServerPlugin } from '@apollo/server';
import type { KeyValueCache } from '@apollo/utils.keyvaluecache';
import { isTenantPrincipal, principalKey, type Principal } from '../auth/principal';

/**
 * Automatic persisted queries keep documents by their sha256. One cache for everyone would be an
 * oracle: asking for a hash tells whether anyone sent that exact document lately, literals and
 * all (a plate searched for, a name, a password typed inline into a login). So every caller has
 * its own entries, under its tenant and principal, and signed-out callers have none: their hash
 * alone is always "not found" and they send the document, as Apollo clients do after a miss.
 *
 * Apollo's own APQ cache is asked with the hash only, so this plugin does the caller's part:
 * when a request sends a hash without its text, requestDidStart (which Apollo awaits before it
 * reads the request) fills in the caller's text, which Apollo then checks against the hash as
 * if the client had sent both; when a request sends both, the text is stored for its caller once
 * the operation has passed validation and every check (executionDidStart), as Apollo would have.
 * Apollo is given NO_SHARED_APQ_CACHE, which holds nothing, so a miss is Apollo's own
 * PERSISTED_QUERY_NOT_FOUND. (The caller used to travel to a caller-aware cache through
 * AsyncLocalStorage, whose promise hooks cost every request of the server a few percent of CPU.)
 *
 * The store gets keys of the form `{<caller>}:apq:<sha256>` (`callerKey`): it keeps each caller's
 * entries and their accounting together under that Redis Cluster hash tag, and caps them per
 * caller.
 */
export function perCallerApqPlugin(entries: KeyValueCache<string>, ttlSeconds: number): ApolloServerPlugin<{ principal: Principal }> {
  return {
    async requestDidStart({ request, contextValue }) {
      const persisted = (request.extensions as { persistedQuery?: { version?: unknown; sha256Hash?: unknown } } | undefined)?.persistedQuery;
      const hash = persisted?.version === 1 && typeof persisted.sha256Hash === 'string' ? persisted.sha256Hash : undefined;
      const scope = scopeOf(contextValue.principal);
      if (!hash || !SHA256_HEX.test(hash) || !scope) return undefined;
      const key = callerKey(scope, `apq:${hash}`);
      if (request.query === undefined) {
        const text = await entries.get(key);
        if (text !== undefined) {
          // Run as a plain query: the store keeps documents without comments (apq-store.ts), so
          // the text no longer hashes to what the client sent, and Apollo would refuse it.
          const { persistedQuery: _found, ...otherExtensions } = request.extensions as Record<string, unknown>;
          request.query = text;
          request.extensions = otherExtensions;
        }
        return undefined;
      }
      const text = request.query;
      return {
        async executionDidStart() {
          // Not awaited, as Apollo does not await its own: the store's answer changes nothing here.
          void Promise.resolve(entries.set(key, text, { ttl: ttlSeconds })).catch(() => undefined);
        },
      };
    },
  };
}

const SHA256_HEX = /^[0-9a-f]{64}$/;

/** What Apollo's own APQ cache is: nothing, so that it only ever misses (see perCallerApqPlugin). */
export const NO_SHARED_APQ_CACHE: KeyValueCache<string> = {
  get: async () => undefined,
  set: async () => undefined,
  delete: async () => false,
};

/** The store's key for `key` of the caller `scope` (which never holds braces: ids and kinds). */
export function callerKey(scope: string, key: string): string {
  return `{${scope}}:${key}`;
}

/** The caller and Apollo's key in a `callerKey`, or null for any other key. */
export function splitCallerKey(key: string): { caller: string; entry: string } | null {
  const match = /^\{([^{}]+)\}:(.+)$/s.exec(key);
  return match ? { caller: match[1] as string, entry: match[2] as string } : null;
}

function scopeOf(principal: Principal): string | null {
  if (isTenantPrincipal(principal)) return `t:${principal.tenant.id}:${principalKey(principal)}`;
  if (principal.kind === 'platformAdmin') return `admin:${principal.adminId}`;
  return null;
}
