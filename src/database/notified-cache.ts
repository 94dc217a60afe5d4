import { LRUCache } from 'lru-cache';
import type { PlatformNotifications } from './platform-notifications';

/**
 * An LRU of platform rows that is trusted only while the platform's change notifications flow
 * (the owner drops entries as notifications arrive, and everything on `clear()` when they may
 * have been missed). A read that raced an invalidation must not store its stale result: take a
 * `snapshot()` before reading the database and pass it to `set`, which then refuses.
 */
export class NotifiedCache<K extends NonNullable<unknown>, V extends NonNullable<unknown>> {
  private readonly entries: LRUCache<K, V>;
  /** Bumped on every invalidation. */
  private generation = 0;

  constructor(
    private readonly notifications: Pick<PlatformNotifications, 'isListening'> | null,
    options: { max: number; maxSize?: number; sizeCalculation?: (value: V, key: K) => number; dispose?: (value: V, key: K) => void },
  ) {
    this.entries = new LRUCache<K, V>(options);
  }

  /** Undefined when not cached, or when notifications are down (read through then). */
  get(key: K): V | undefined {
    return this.trusted() ? this.entries.get(key) : undefined;
  }

  snapshot(): number {
    return this.generation;
  }

  /** Stores the value unless notifications are down or an invalidation came after `snapshot`. */
  set(key: K, value: V, snapshot: number): boolean {
    if (!this.trusted() || snapshot !== this.generation) return false;
    this.entries.set(key, value);
    return true;
  }

  /** Drops these entries; even with none given, voids reads in flight (see `snapshot`). */
  delete(...keys: K[]): void {
    this.generation += 1;
    for (const key of keys) this.entries.delete(key);
  }

  clear(): void {
    this.generation += 1;
    this.entries.clear();
  }

  private trusted(): boolean {
    return this.notifications?.isListening() ?? false;
  }
}
