/**
 * When to acknowledge delivered pages. A page holding a message is acknowledged at once: its sender's delivered
 * receipt waits for that acknowledgement. A page of receipts only waits up to `delayMs` (or until `maxPending`
 * envelopes wait), so a busy device sends one `ack` for many receipt pages: acknowledgements are cumulative,
 * and each `ack` is an event in the server's object. Receipts redelivered after a lost `ack` are no-ops.
 */

/** What the acknowledger needs of the connection (see Connection.ack). */
export interface AckSink {
  ack(generation: number, upTo: number): boolean;
}

export class Acknowledger {
  private pending: { generation: number; upTo: number; count: number } | null = null;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly sink: AckSink,
    private readonly delayMs: number,
    private readonly maxPending: number,
  ) {}

  /**
   * Records that envelopes up to `upTo`, delivered on socket `generation`, are stored.
   * @example
   * acks.stored(generation, frame.envelopes.at(-1).seq, frame.envelopes.length, frame.envelopes.every(isReceipt));
   */
  stored(generation: number, upTo: number, count: number, receiptsOnly: boolean): void {
    if (this.pending && this.pending.generation !== generation) this.pending = null; // that socket's server redelivers
    if (!receiptsOnly) {
      this.pending = null;
      this.clearTimer();
      this.sink.ack(generation, upTo);
      return;
    }
    this.pending = { generation, upTo, count: (this.pending?.count ?? 0) + count };
    if (this.pending.count >= this.maxPending) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), this.delayMs);
  }

  /**
   * Acknowledges what waits now (e.g. before closing).
   * @example
   * acks.flush();
   */
  flush(): void {
    this.clearTimer();
    const pending = this.pending;
    this.pending = null;
    if (pending) this.sink.ack(pending.generation, pending.upTo);
  }

  private clearTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/** What the live-receipt acknowledger needs of the connection (see Connection.ackReceipts). */
export interface ReceiptAckSink {
  ackReceipts(batches: string[]): boolean;
}

/**
 * Acknowledges `receipts` frames (receipts pushed live) together, like pages of receipts: after at most `delayMs`
 * or once `maxPending` batches wait. An acknowledgement lost with its socket only means those receipts come again.
 */
export class LiveReceiptAcknowledger {
  private pending: string[] = [];
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly sink: ReceiptAckSink,
    private readonly delayMs: number,
    private readonly maxPending: number,
  ) {}

  /**
   * Records that the receipts of `batch` are stored.
   * @example
   * liveAcks.stored(frame.batch);
   */
  stored(batch: string): void {
    this.pending.push(batch);
    if (this.pending.length >= this.maxPending) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), this.delayMs);
  }

  /**
   * Acknowledges what waits now (e.g. before closing).
   * @example
   * liveAcks.flush();
   */
  flush(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const batches = this.pending;
    this.pending = [];
    if (batches.length > 0) this.sink.ackReceipts(batches);
  }
}
