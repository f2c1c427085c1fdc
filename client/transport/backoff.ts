/** Reconnect delays: exponential with full jitter (AWS's "full jitter"), so many clients do not return in step. */

/**
 * The delay before reconnect attempt `attempt` (0 for the first retry): uniform in [0, min(maxMs, baseMs·2^attempt)].
 * @example
 * setTimeout(connect, backoffDelay(failures++, 500, 30_000));
 */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}
