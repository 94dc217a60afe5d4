import { LRUCache } from 'lru-cache';

/** A request's operation as the guard reads it off the wire. */
export interface OperationAsSent {
  query?: unknown;
  operationName?: unknown;
  variables?: unknown;
  extensions?: unknown;
}

/** Longer requests are priced afresh each time rather than kept (and hashed) as keys. */
const MAX_KEY_LENGTH = 2_048;

/**
 * The cost each caller's recently priced operations came to, keyed by the caller and the
 * operation exactly as sent (text or persisted hash, name, variables), so that the request guard
 * can spend a repeated operation's whole cost in its one Redis round trip instead of a point
 * first and the rest once Apollo has priced it (a second round trip). A cost is a function of
 * the document and its variables only, so a key always maps to the same cost; a request whose
 * operation is not known here is charged as before, and its price is remembered for the next one.
 *
 * Per caller, because the guard spends before its own refusals: an operation one caller runs may
 * be refused to another before it is priced (a persisted-only key sending text, a hash not
 * registered for its tenant, an automatic persisted query this caller never stored), and such a
 * refusal must cost the one point of any refusal, not the price someone else's run established.
 */
export class KnownCosts {
  private readonly costs = new LRUCache<string, number>({ max: 5_000 });

  /**
   * The key of a single operation as `caller` sent it; undefined when it is too long to keep. `sentBytes`
   * (the body's or URL's length) comes first: nothing has checked the operation yet, and
   * variables nested thousands deep would overflow the stack of JSON.stringify.
   */
  keyOf(caller: string, operation: OperationAsSent, sentBytes: number): string | undefined {
    if (sentBytes > MAX_KEY_LENGTH) return undefined;
    let key: string;
    try {
      key = JSON.stringify([caller, operation.query ?? null, operation.operationName ?? null, operation.variables ?? null, operation.extensions ?? null]);
    } catch {
      return undefined;
    }
    return key.length <= MAX_KEY_LENGTH ? key : undefined;
  }

  get(key: string | undefined): number | undefined {
    return key === undefined ? undefined : this.costs.get(key);
  }

  remember(key: string | undefined, cost: number): void {
    if (key !== undefined) this.costs.set(key, cost);
  }
}
