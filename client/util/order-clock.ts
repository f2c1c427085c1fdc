/** Strictly increasing order values (microsecond-scaled wall time) for keys that must sort in creation order. */

/**
 * Hands out `max(now·1000, previous + 1)`: ordered like the clock, never equal, even for many calls in one millisecond.
 * @example
 * const clock = new OrderClock(lastUsed);
 * const a = clock.next(Date.now()), b = clock.next(Date.now()); // a < b
 */
export class OrderClock {
  constructor(private last = 0) {}

  /**
   * The next order value.
   * @example
   * put("outbox", outboxKey(clock.next(Date.now()), id), item);
   */
  next(nowMs: number): number {
    this.last = Math.max(nowMs * 1000, this.last + 1);
    return this.last;
  }
}

/**
 * The order value of a delivered envelope: the server's time, then its inbox sequence within one millisecond.
 * @example
 * historyKey(conversation, envelopeOrder(envelope.ts, envelope.seq), ref);
 */
export function envelopeOrder(ts: number, seq: number): number {
  return ts * 1000 + (seq % 1000);
}
