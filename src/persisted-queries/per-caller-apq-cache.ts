import { AsyncLocalStorage } from 'node:async_hooks';
import type { KeyValueCache, KeyValueCacheSetOptions } from '@apollo/utils.keyvaluecache';
import { isTenantPrincipal, principalKey, type Principal } from '../auth/principal';

/**
 * Automatic persisted queries keep documents by their sha256. One cache for everyone would be an
 * oracle: asking for a hash tells whether anyone sent that exact document lately, literals and
 * all (a plate searched for, a name, a password typed inline into a login). So every caller has
 * its own entries, under its tenant and principal, and signed-out callers have none: their hash
 * alone is always "not found" and they send the document, as Apollo clients do after a miss.
 *
 * Apollo asks the cache with the hash only, so the caller comes from the request's async
 * context (`runAs`, around Apollo's handling of the request). The store below gets keys of the
 * form `{<caller>}:<Apollo's key>` (`callerKey`): it keeps each caller's entries and their
 * accounting together under that Redis Cluster hash tag, and caps them per caller.
 */
export class PerCallerApqCache implements KeyValueCache<string> {
  private readonly caller = new AsyncLocalStorage<string | null>();

  constructor(private readonly entries: KeyValueCache<string>) {}

  /** Runs `work` (the rest of the request) with the cache of `principal`. */
  runAs<T>(principal: Principal, work: () => T): T {
    return this.caller.run(scopeOf(principal), work);
  }

  get(key: string): Promise<string | undefined> {
    const scope = this.caller.getStore();
    return scope ? this.entries.get(callerKey(scope, key)) : Promise.resolve(undefined);
  }

  set(key: string, value: string, options?: KeyValueCacheSetOptions): Promise<void> {
    const scope = this.caller.getStore();
    return scope ? this.entries.set(callerKey(scope, key), value, options) : Promise.resolve();
  }

  delete(key: string): Promise<boolean | void> {
    const scope = this.caller.getStore();
    return scope ? this.entries.delete(callerKey(scope, key)) : Promise.resolve(false);
  }
}

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
