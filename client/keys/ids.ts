/** Prekey ids: 24-bit (1..0xFFFFFF), as the server's schema and libsignal's clients use them, wrapping around. */

export const MAX_KEY_ID = 0xffffff;

/**
 * The first id of a run of `count` consecutive ids starting at `next` (restarting at 1 when the run would pass the maximum).
 * @example
 * const first = keyIdRun(state.nextPreKeyId, 100);
 */
export function keyIdRun(next: number, count: number): number {
  return next >= 1 && next + count - 1 <= MAX_KEY_ID ? next : 1;
}
