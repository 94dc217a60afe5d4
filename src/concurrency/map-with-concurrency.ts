/**
 * Runs `work` over `items` with at most `limit` in flight, keeping input order in the output.
 * A dozen lines; the maintained alternatives (p-limit, p-map) ship as ES modules only, which
 * this CommonJS build would have to load asynchronously.
 */
export async function mapWithConcurrency<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
