import { mapWithConcurrency } from '../../src/concurrency/map-with-concurrency';

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Wraps work with an in-flight counter that records the highest value it reached. */
function tracked<T, R>(work: (item: T) => Promise<R>) {
  const stats = { inFlight: 0, maxInFlight: 0, started: 0 };
  const run = async (item: T) => {
    stats.inFlight += 1;
    stats.started += 1;
    stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight);
    try {
      return await work(item);
    } finally {
      stats.inFlight -= 1;
    }
  };
  return { run, stats };
}

describe('mapWithConcurrency', () => {
  it('keeps input order in the output even when later items finish first', async () => {
    const items = [50, 5, 30, 1, 20, 10, 0, 15];
    const finished: number[] = [];
    const result = await mapWithConcurrency(items, 4, async (ms) => {
      await delay(ms);
      finished.push(ms);
      return `done-${ms}`;
    });
    expect(result).toEqual(items.map((ms) => `done-${ms}`));
    expect(finished).not.toEqual(items); // they really did finish out of order
  });

  it.each([1, 2, 3, 4, 7])('never has more than %i in flight, and uses that many', async (limit) => {
    const items = Array.from({ length: 20 }, (_, index) => index);
    const { run, stats } = tracked(async (index: number) => {
      await delay(2 + (index % 3));
      return index * 2;
    });
    const result = await mapWithConcurrency(items, limit, run);
    expect(result).toEqual(items.map((index) => index * 2));
    expect(stats.maxInFlight).toBe(limit);
    expect(stats.started).toBe(items.length);
    expect(stats.inFlight).toBe(0);
  });

  it('starts at most as many workers as there are items', async () => {
    const { run, stats } = tracked(async (item: string) => {
      await delay(5);
      return item.toUpperCase();
    });
    expect(await mapWithConcurrency(['a', 'b', 'c'], 32, run)).toEqual(['A', 'B', 'C']);
    expect(stats.maxInFlight).toBe(3);
  });

  it('runs each item exactly once', async () => {
    const calls = new Map<number, number>();
    const items = Array.from({ length: 25 }, (_, index) => index);
    await mapWithConcurrency(items, 6, async (item) => {
      calls.set(item, (calls.get(item) ?? 0) + 1);
      await delay(item % 4);
    });
    expect([...calls.keys()].sort((a, b) => a - b)).toEqual(items);
    expect([...calls.values()].every((count) => count === 1)).toBe(true);
  });

  it('returns an empty array for no items without calling work', async () => {
    const work = jest.fn(async () => 1);
    expect(await mapWithConcurrency([], 4, work)).toEqual([]);
    expect(work).not.toHaveBeenCalled();
  });

  it('rejects when a work item rejects', async () => {
    await expect(
      mapWithConcurrency([1, 2, 3], 2, async (item) => {
        await delay(1);
        if (item === 2) throw new Error('item 2 failed');
        return item;
      }),
    ).rejects.toThrow('item 2 failed');
  });
});
