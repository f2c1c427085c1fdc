/** Serializes async operations per owner object: two session operations on one store never interleave their load-modify-store. */

const tails = new WeakMap<object, Promise<unknown>>();

/** Runs `task` after every task queued before it for `owner` has settled; returns its result. */
export function withLock<T>(owner: object, task: () => Promise<T>): Promise<T> {
  const previous = tails.get(owner) ?? Promise.resolve();
  const run = previous.then(task, task);
  tails.set(
    owner,
    run.catch(() => undefined),
  );
  return run;
}
