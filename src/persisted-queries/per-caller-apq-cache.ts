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
 * context (`runAs`, around Apollo's handling of the request).
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
    return scope ? this.entries.get(`${scope}:${key}`) : Promise.resolve(undefined);
  }

  set(key: string, value: string, options?: KeyValueCacheSetOptions): Promise<void> {
    const scope = this.caller.getStore();
    return scope ? this.entries.set(`${scope}:${key}`, value, options) : Promise.resolve();
  }

  delete(key: string): Promise<boolean | void> {
    const scope = this.caller.getStore();
    return scope ? this.entries.delete(`${scope}:${key}`) : Promise.resolve(false);
  }
}

function scopeOf(principal: Principal): string | null {
  if (isTenantPrincipal(principal)) return `t:${principal.tenant.id}:${principalKey(principal)}`;
  if (principal.kind === 'platformAdmin') return `admin:${principal.adminId}`;
  return null;
}
