/**
 * Runs `task` for every item, at most `limit` at once: a slow item holds one slot, never the others.
 * Only `start` tasks begin at once and each one that finishes starts up to four more, so hundreds of calls
 * started in the same moment don't queue the caller's own answer behind them (every object of a local
 * workerd shares one thread). `task` must not reject.
 */
export function forEachLimited<T>(items: readonly T[], limit: number, task: (item: T) => Promise<void>, start = limit): Promise<void> {
  return new Promise((resolve) => {
    let next = 0;
    let running = 0;
    const launch = (): void => {
      if (next >= items.length || running >= limit) return;
      const item = items[next++]!;
      running++;
      void task(item).then(() => {
        running--;
        for (let i = 0; i < 4; i++) launch();
        if (running === 0 && next >= items.length) resolve();
      });
    };
    for (let i = 0; i < Math.min(start, limit); i++) launch();
    if (items.length === 0) resolve();
  });
}
