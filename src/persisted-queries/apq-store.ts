import type { KeyValueCache, KeyValueCacheSetOptions } from '@apollo/utils.keyvaluecache';
import { stripIgnoredCharacters } from 'graphql';
import { LRUCache } from 'lru-cache';
import { splitCallerKey } from './per-caller-apq-cache';

/*
 * What the automatic-persisted-query stores (Redis, or this process's memory) share. Apollo
 * registers every document a caller sends with its hash, for APQ_TTL_SECONDS, and a valid
 * document may be almost all comment (comments are not tokens) or one huge string literal. So
 * each caller (a `callerKey`) gets a budget of entries and bytes, and a document is stored
 * stripped of what does not change its meaning, and only when that is small enough: otherwise
 * it still runs, it is just not remembered, and the client sends it again next time.
 *
 * Past the budget the caller's oldest entries make room, rather than new ones being refused:
 * the budget is per caller, so the only entries a caller can evict are its own, and a client
 * whose operations changed (a new release) keeps the benefit of APQ for the ones it sends now
 * instead of being stuck with yesterday's until they expire.
 */

export interface ApqLimits {
  /** Default lifetime of an entry (Apollo passes its own, the same APQ_TTL_SECONDS). */
  ttlSeconds: number;
  maxDocumentBytes: number;
  maxEntriesPerCaller: number;
  maxBytesPerCaller: number;
}

/** Milliseconds since the epoch; tests move it forward instead of waiting. */
export type Clock = () => number;

/**
 * The text to store for `document`: graphql-js's `stripIgnoredCharacters` (no comments, no
 * insignificant whitespace or commas; same meaning), or null when even that is larger than
 * `maxDocumentBytes`. Apollo looks documents up by the hash the client sent and does not hash
 * what it finds again, so the shorter text serves the same hash.
 */
export function normaliseApqDocument(document: string, maxDocumentBytes: number): string | null {
  let stripped: string;
  try {
    stripped = stripIgnoredCharacters(document);
  } catch {
    // Apollo registers only documents that parsed; text that does not even lex is not kept.
    return null;
  }
  return Buffer.byteLength(stripped, 'utf8') <= maxDocumentBytes ? stripped : null;
}

export function entryTtlMs(options: KeyValueCacheSetOptions | undefined, limits: ApqLimits): number {
  const seconds = options?.ttl && options.ttl > 0 ? options.ttl : limits.ttlSeconds;
  return Math.max(1, Math.round(seconds * 1000));
}

/** Without Redis, everything the process keeps for APQ, all callers together. */
export const MEMORY_APQ_TOTAL_BYTES = 20 * 1024 * 1024;

/**
 * What an LRU of `maxEntries` costs before it holds anything: lru-cache allocates its arrays for
 * `max` entries up front (measured: about 48 bytes an entry, 48 KB for 1,000).
 */
export const memoryCallerOverhead = (maxEntries: number) => 64 * maxEntries + 1_024;

/**
 * The same budget in this process's memory, for a server without Redis (single instance). Each
 * caller has an LRU of entries bounded by count and bytes; reads `peek`, so, as in Redis, the
 * entry evicted first is the one written longest ago. The callers themselves sit in an LRU bounded
 * by MEMORY_APQ_TOTAL_BYTES (their documents and the LRUs' own arrays), the least recently active
 * going first, and a caller's whole LRU goes once its newest entry has expired.
 */
export class MemoryApqCache implements KeyValueCache<string> {
  private readonly callers: LRUCache<string, LRUCache<string, string>>;
  private readonly perf: { now: Clock };

  constructor(
    private readonly limits: ApqLimits,
    clock: Clock = Date.now,
    totalBytes = MEMORY_APQ_TOTAL_BYTES,
  ) {
    this.perf = { now: clock };
    const overhead = memoryCallerOverhead(limits.maxEntriesPerCaller);
    this.callers = new LRUCache<string, LRUCache<string, string>>({
      max: 100_000,
      maxSize: totalBytes,
      // Re-set after every change, so this follows the caller's bytes.
      sizeCalculation: (entries) => overhead + entries.calculatedSize,
      perf: this.perf,
      // lru-cache otherwise reuses a reading of the clock for a while; tests move the clock.
      ttlResolution: 0,
    });
  }

  async get(key: string): Promise<string | undefined> {
    const parts = splitCallerKey(key);
    return parts ? this.callers.get(parts.caller)?.peek(parts.entry) : undefined;
  }

  async set(key: string, value: string, options?: KeyValueCacheSetOptions): Promise<void> {
    const parts = splitCallerKey(key);
    const document = parts && normaliseApqDocument(value, this.limits.maxDocumentBytes);
    if (!parts || document === null) return;
    const ttl = entryTtlMs(options, this.limits);
    const entries = this.callers.get(parts.caller) ?? this.newCaller();
    // Expired entries give their room back before any live one is evicted for it.
    entries.purgeStale();
    // A document over the caller's whole byte budget is not stored (lru-cache's maxEntrySize).
    entries.set(parts.entry, document, { ttl });
    if (entries.size === 0) this.callers.delete(parts.caller);
    else this.callers.set(parts.caller, entries, { ttl: Math.ceil(Math.max(ttl, this.callers.getRemainingTTL(parts.caller))) });
  }

  async delete(key: string): Promise<boolean> {
    const parts = splitCallerKey(key);
    const entries = parts && this.callers.get(parts.caller);
    if (!parts || !entries) return false;
    const deleted = entries.delete(parts.entry);
    if (entries.size === 0) this.callers.delete(parts.caller);
    else this.callers.set(parts.caller, entries, { ttl: Math.max(1, Math.ceil(this.callers.getRemainingTTL(parts.caller))) });
    return deleted;
  }

  /** A caller's entries and bytes as accounted (expired ones go at the caller's next write). */
  usage(caller: string): { entries: number; bytes: number } {
    const entries = this.callers.peek(caller, { allowStale: true });
    return { entries: entries?.size ?? 0, bytes: entries?.calculatedSize ?? 0 };
  }

  private newCaller(): LRUCache<string, string> {
    return new LRUCache<string, string>({
      max: this.limits.maxEntriesPerCaller,
      maxSize: this.limits.maxBytesPerCaller,
      sizeCalculation: (document) => Math.max(1, Buffer.byteLength(document, 'utf8')),
      perf: this.perf,
      ttlResolution: 0,
    });
  }
}
