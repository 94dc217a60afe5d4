import { NotifiedCache } from '../../src/database/notified-cache';

function cacheWith(listening: { value: boolean }) {
  return new NotifiedCache<string, { name: string }>({ isListening: () => listening.value }, { max: 10 });
}

describe('NotifiedCache', () => {
  it('serves what it stored while notifications flow', () => {
    const cache = cacheWith({ value: true });
    expect(cache.set('a', { name: 'A' }, cache.snapshot())).toBe(true);
    expect(cache.get('a')).toEqual({ name: 'A' });
  });

  it('refuses a result read before an invalidation that landed meanwhile', () => {
    const cache = cacheWith({ value: true });
    const before = cache.snapshot();
    cache.delete('a'); // a notification arrives while the database read is in flight
    expect(cache.set('a', { name: 'stale' }, before)).toBe(false);
    expect(cache.get('a')).toBeUndefined();
    expect(cache.set('a', { name: 'fresh' }, cache.snapshot())).toBe(true);
  });

  it('voids reads in flight even when the invalidation names nothing cached', () => {
    const cache = cacheWith({ value: true });
    const before = cache.snapshot();
    cache.delete();
    expect(cache.set('b', { name: 'stale' }, before)).toBe(false);
  });

  it('neither stores nor serves while notifications are down, and forgets on clear', () => {
    const listening = { value: true };
    const cache = cacheWith(listening);
    cache.set('a', { name: 'A' }, cache.snapshot());
    listening.value = false;
    expect(cache.get('a')).toBeUndefined();
    expect(cache.set('b', { name: 'B' }, cache.snapshot())).toBe(false);
    cache.clear();
    listening.value = true;
    expect(cache.get('a')).toBeUndefined();
  });

  it('never caches without a notification source', () => {
    const cache = new NotifiedCache<string, string>(null, { max: 10 });
    expect(cache.set('a', 'A', cache.snapshot())).toBe(false);
    expect(cache.get('a')).toBeUndefined();
  });

  it('calls dispose for entries it drops', () => {
    const disposed: string[] = [];
    const cache = new NotifiedCache<string, string>({ isListening: () => true }, { max: 1, dispose: (_value, key) => disposed.push(key) });
    cache.set('a', 'A', cache.snapshot());
    cache.set('b', 'B', cache.snapshot()); // evicts a
    cache.delete('b');
    expect(disposed).toEqual(['a', 'b']);
  });
});
