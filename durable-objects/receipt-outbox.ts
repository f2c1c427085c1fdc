/**
 * Receipts this user owes to other users: written in the same transaction as the acknowledgement that
 * caused them, handed to the senders' UserDOs at once (batched per target), and retried by the object's
 * alarm when a hand-over fails or the object dies first. Receipts are delivered at least once: a row
 * handed over is deleted with the next write or by the alarm, so a crash in between repeats it.
 */
import type { ReceiptDelivery } from "./inbox";

interface Owed {
  id: number;
  target: string;
  receipt: ReceiptDelivery;
}

const BATCH = 500;
/** A failed hand-over is retried after this long. */
export const RECEIPT_RETRY_MS = 2_000;
/** The safety net for a crash between an acknowledgement and its hand-over (one wake-up per busy period). */
export const RECEIPT_SAFETY_NET_MS = 30_000;

export class ReceiptOutbox {
  /** Rows written while awake, in id order; a copy of what is in SQLite. */
  private memory: Owed[] = [];
  /** SQLite may hold rows that are not in memory (after a wake-up or a failed hand-over). */
  private unloaded = true;
  private alarmSet = false;
  private flushing: Promise<void> | null = null;
  /** Handed over but still in SQLite: deleted with the next write (saving a transaction per hand-over). */
  private handedOver: number[] = [];

  constructor(
    private readonly sql: SqlStorage,
    private readonly storage: DurableObjectStorage,
    private readonly handOver: (target: string, receipts: ReceiptDelivery[]) => Promise<unknown>,
    private readonly onRetry: (error: unknown) => void,
  ) {}

  /** Deletes rows already handed over; call it from events that write anyway. */
  settle(): void {
    if (this.handedOver.length === 0) return;
    const ids = this.handedOver.sort((a, b) => a - b);
    const oldestLeft = this.memory[0]?.id ?? Infinity;
    if (this.unloaded || ids[ids.length - 1]! > oldestLeft) {
      this.sql.exec("DELETE FROM receipt_outbox WHERE id IN (SELECT value FROM json_each(?))", JSON.stringify(ids));
    } else {
      this.sql.exec("DELETE FROM receipt_outbox WHERE id <= ?", ids[ids.length - 1]!); // everything older is handed over
    }
    this.handedOver = [];
  }

  /** Records receipts durably (with the caller's transaction) and starts handing them over. */
  add(owed: { target: string; receipt: ReceiptDelivery }[]): void {
    this.settle();
    for (const { target, receipt } of owed) {
      const { id } = this.sql
        .exec<{ id: number }>("INSERT INTO receipt_outbox (target, receipt) VALUES (?, ?) RETURNING id", target, JSON.stringify(receipt))
        .one();
      this.memory.push({ id, target, receipt });
    }
    if (!this.alarmSet) {
      void this.storage.setAlarm(Date.now() + RECEIPT_SAFETY_NET_MS);
      this.alarmSet = true;
    }
    void this.flush();
  }

  /** The alarm fired: hand over whatever is left, and keep retrying while something is. */
  async retry(): Promise<void> {
    this.alarmSet = false;
    await this.flushing;
    this.settle();
    this.unloaded = true;
    await this.flush();
    this.settle();
    if ((this.unloaded || this.memory.length > 0) && !this.alarmSet) {
      await this.storage.setAlarm(Date.now() + RECEIPT_RETRY_MS);
      this.alarmSet = true;
    }
  }

  private flush(): Promise<void> {
    this.flushing ??= this.drain().finally(() => (this.flushing = null));
    return this.flushing;
  }

  private async drain(): Promise<void> {
    for (;;) {
      const batch = this.unloaded ? this.load() : this.memory.splice(0, BATCH);
      if (batch.length === 0) return;
      const byTarget = new Map<string, ReceiptDelivery[]>();
      for (const owed of batch) {
        const list = byTarget.get(owed.target);
        if (list) list.push(owed.receipt);
        else byTarget.set(owed.target, [owed.receipt]);
      }
      try {
        await Promise.all([...byTarget].map(([target, receipts]) => this.handOver(target, receipts)));
      } catch (error) {
        this.unloaded = true; // the alarm reads them back from SQLite
        this.memory = [];
        this.onRetry(error);
        void this.storage.setAlarm(Date.now() + RECEIPT_RETRY_MS);
        this.alarmSet = true;
        return;
      }
      for (const owed of batch) this.handedOver.push(owed.id);
    }
  }

  private load(): Owed[] {
    this.settle();
    const rows = this.sql
      .exec<{ id: number; target: string; receipt: string }>("SELECT id, target, receipt FROM receipt_outbox ORDER BY id LIMIT ?", BATCH)
      .toArray();
    if (rows.length < BATCH) {
      this.unloaded = false;
      this.memory = [];
    } else {
      const loaded = new Set(rows.map((r) => r.id));
      this.memory = this.memory.filter((o) => !loaded.has(o.id));
    }
    return rows.map((r) => ({ id: r.id, target: r.target, receipt: JSON.parse(r.receipt) as ReceiptDelivery }));
  }
}
