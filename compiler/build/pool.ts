/**
 * Runs async jobs with at most `jobs` in flight, results in input order. After `stop()` returns
 * true for a result, no new job starts (those in flight finish): a failed compile ends the build
 * early without abandoning nvcc processes half-way.
 */
export async function runPool<T, R>(items: readonly T[], jobs: number, work: (item: T, index: number) => Promise<R>, stop: (result: R) => boolean = () => false): Promise<(R | undefined)[]> {
  const results: (R | undefined)[] = new Array(items.length).fill(undefined);
  let next = 0;
  let stopped = false;
  const worker = async (): Promise<void> => {
    while (!stopped && next < items.length) {
      const i = next++;
      const r = await work(items[i]!, i);
      results[i] = r;
      if (stop(r)) stopped = true;
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(jobs, items.length)) }, worker));
  return results;
}
