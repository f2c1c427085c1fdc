/** Runs async tasks one at a time, in call order. */

/**
 * A queue of async tasks: each starts when the previous one settled.
 * @example
 * const lane = new SerialQueue();
 * await lane.run(() => decryptAndStore(envelope));
 */
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();

  /**
   * Runs `task` after every task queued before it; resolves or rejects with its result.
   * @example
   * const value = await lane.run(async () => 42);
   */
  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.tail.then(task, task);
    this.tail = result.catch(() => undefined);
    return result;
  }
}
