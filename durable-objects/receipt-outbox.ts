/**
 * Receipts this user owes to other users: written in the same transaction as the acknowledgement that
 * caused them, then handed to the senders' UserDOs, and retried by the object's alarm when a hand-over fails
 * or the object dies first. Receipts are delivered at least once (the receiving UserDO drops the repeats it can
 * recognize): a row handed over is deleted with the next write or by the alarm, so a crash in between repeats it.
 *
 * Riding: while a sender's object keeps calling this one (a fast conversation), the receipts owed to it wait
 * for its next call and travel back in that call's answer, instead of costing a call of their own. A later call
 * confirms them by id once every device of the sender has them, and only then are they deleted. What no call
 * picks up within `RECEIPT_RIDE_WAIT_MS`, and what was carried but not confirmed within `RECEIPT_CONFIRM_WAIT_MS`,
 * the alarm hands over by itself.
 */
import { GROUP_ORIGIN_PREFIX, type ReceiptDelivery } from "./inbox";
import { SharedAlarm } from "./shared-alarm";

interface Owed {
  id: number;
  target: string;
  receipt: ReceiptDelivery;
}

/** Receipts held back for one target's next call. */
interface Held {
  owed: Owed[];
  since: number;
}

/** Receipts carried in answers to one target, by receipt id, each since when. */
type Carried = Map<string, { owed: Owed; since: number }>;

const BATCH = 500;
/** A failed hand-over is retried after this long. */
export const RECEIPT_RETRY_MS = 2_000;
/** The safety net for a crash between an acknowledgement and its hand-over (one wake-up per busy period). */
export const RECEIPT_SAFETY_NET_MS = 30_000;
/**
 * A target whose calls come at most this far apart is in a fast conversation: its receipts wait this long, at
 * most, for its next call. It is also the longest a delivered tick is held back, at the end of such a burst.
 */
export const RECEIPT_RIDE_WAIT_MS = 250;
/**
 * How long a carried receipt waits for its confirmation: the sender's devices acknowledge live receipts lazily
 * (the SDK within a second), and the confirmation comes with the sender's next call after that.
 */
export const RECEIPT_CONFIRM_WAIT_MS = 3_000;
/** Up to this many rows are deleted by a statement with one parameter each (cheaper than parsing a JSON list). */
const FEW = 8;
const DELETE_FEW = Array.from({ length: FEW + 1 }, (_, n) => `DELETE FROM receipt_outbox WHERE id IN (${Array(n).fill("?").join(", ")})`);
/** Targets whose call times are remembered (the people currently sending to this user). */
const PACE_MEMORY = 256;

export class ReceiptOutbox {
  /** Rows to hand over now, in id order; a copy of what is in SQLite. */
  private memory: Owed[] = [];
  /** SQLite may hold rows that are not in memory (after a wake-up or a failed hand-over). */
  private unloaded = true;
  private flushing: Promise<void> | null = null;
  /** Handed over but still in SQLite: deleted with the next write (saving a transaction per hand-over). */
  private handedOver: number[] = [];
  /** Waiting for the target's next call. */
  private readonly waiting = new Map<string, Held>();
  /** Carried in answers to the target's calls, until a later call confirms them. */
  private readonly riding = new Map<string, Carried>();
  /** When each target last called, and whether the call before came within the wait. */
  private readonly pace = new Map<string, { last: number; fast: boolean }>();
  private readonly alarm: SharedAlarm;

  constructor(
    private readonly sql: SqlStorage,
    storage: DurableObjectStorage,
    private readonly handOver: (target: string, receipts: ReceiptDelivery[]) => Promise<unknown>,
    private readonly onRetry: (error: unknown) => void,
  ) {
    this.alarm = new SharedAlarm(storage);
  }

  /** Deletes rows already handed over; call it from events that write anyway. */
  settle(): void {
    const ids = this.handedOver;
    if (ids.length === 0) return;
    if (ids.length <= FEW) this.sql.exec(DELETE_FEW[ids.length]!, ...ids);
    else this.sql.exec("DELETE FROM receipt_outbox WHERE id IN (SELECT value FROM json_each(?))", JSON.stringify(ids));
    this.handedOver = [];
  }

  /**
   * Records receipts durably (with the caller's transaction). Those for a target in a fast conversation wait
   * for its next call; the others are handed over at once. `ridable`: targets that can carry receipts back.
   */
  add(owed: { target: string; receipt: ReceiptDelivery }[], ridable: (target: string) => boolean): void {
    this.settle();
    const now = Date.now();
    let handNow = false;
    for (const { target, receipt } of owed) {
      const { id } = this.sql
        .exec<{ id: number }>("INSERT INTO receipt_outbox (target, receipt) VALUES (?, ?) RETURNING id", target, JSON.stringify(receipt))
        .one();
      const entry = { id, target, receipt };
      if (ridable(target) && this.inFastConversation(target, now)) {
        hold(this.waiting, target, entry, now);
        this.alarm.requestBy(now + RECEIPT_RIDE_WAIT_MS);
      } else {
        this.memory.push(entry);
        handNow = true;
      }
    }
    this.alarm.requestBy(now + RECEIPT_SAFETY_NET_MS);
    if (handNow) void this.flush();
  }

  /**
   * `target` is calling: the receipts to carry back in the answer. `confirmed`: ids of receipts carried before
   * that every device of the target now has (deleted with this event's write; unknown ids are ignored).
   */
  ride(target: string, confirmed: readonly string[]): ReceiptDelivery[] | undefined {
    const now = Date.now();
    this.notePace(target, now);
    const carried = this.riding.get(target);
    for (const id of carried ? confirmed : []) {
      const entry = carried!.get(id);
      if (!entry) continue;
      this.handedOver.push(entry.owed.id);
      carried!.delete(id);
    }
    const waiting = this.waiting.get(target);
    this.waiting.delete(target);
    if (!waiting) {
      if (carried?.size === 0) this.riding.delete(target);
      return undefined;
    }
    const nowCarried: Carried = carried ?? new Map();
    for (const owed of waiting.owed) nowCarried.set(owed.receipt.id, { owed, since: now });
    this.riding.set(target, nowCarried);
    this.alarm.requestBy(now + RECEIPT_CONFIRM_WAIT_MS);
    return waiting.owed.map((o) => o.receipt);
  }

  /**
   * Whether a delivered receipt owed to `target` now would wait for its next call (a fast conversation with a
   * user's object).
   */
  wouldWait(target: string): boolean {
    return !target.startsWith(GROUP_ORIGIN_PREFIX) && this.inFastConversation(target, Date.now());
  }

  /**
   * Call from an event that writes anyway, once nothing it could write is held back: keeps an alarm that
   * would fire within half of `RECEIPT_RIDE_WAIT_MS` from firing before `RECEIPT_RIDE_WAIT_MS` from now, unless
   * a receipt is due sooner. While a sender keeps calling, its calls pick up what the alarm would, so the alarm
   * (an event and a write each time) does not fire; acknowledgements held meanwhile find it set within their wait.
   */
  keepAlarmAhead(now: number = Date.now()): void {
    if (this.unloaded || this.memory.length > 0 || this.flushing) return;
    this.alarm.postpone(now + RECEIPT_RIDE_WAIT_MS / 2, () => {
      let due = now + RECEIPT_RIDE_WAIT_MS;
      for (const { since } of this.waiting.values()) due = Math.min(due, since + RECEIPT_RIDE_WAIT_MS);
      for (const carried of this.riding.values()) {
        const oldest = carried.values().next().value; // carried in order, so the first is due first
        if (oldest) due = Math.min(due, oldest.since + RECEIPT_CONFIRM_WAIT_MS);
      }
      return due;
    });
  }

  /** Makes sure the object's alarm fires by `time` (it runs `retry`, and `prepare` first). */
  requestAlarmBy(time: number): void {
    this.alarm.requestBy(time);
  }

  /** The alarm fired: `prepare` (e.g. write what was held back), then hand over whatever is due, and keep retrying while something is. */
  async retry(prepare?: () => void): Promise<void> {
    this.alarm.fired();
    prepare?.();
    await this.flushing;
    this.settle();
    const now = Date.now();
    for (const [target, { owed, since }] of this.waiting) {
      if (since + RECEIPT_RIDE_WAIT_MS > now) continue;
      this.waiting.delete(target);
      this.memory.push(...owed);
    }
    for (const [target, carried] of this.riding) {
      for (const [id, { owed, since }] of carried) {
        if (since + RECEIPT_CONFIRM_WAIT_MS > now) continue;
        carried.delete(id);
        this.memory.push(owed);
      }
      if (carried.size === 0) this.riding.delete(target);
    }
    this.memory.sort((a, b) => a.id - b.id);
    await this.flush();
    this.settle();
    if (this.unloaded || this.memory.length > 0) this.alarm.requestBy(Date.now() + RECEIPT_RETRY_MS);
    for (const { since } of this.waiting.values()) this.alarm.requestBy(since + RECEIPT_RIDE_WAIT_MS);
    for (const carried of this.riding.values()) {
      for (const { since } of carried.values()) this.alarm.requestBy(since + RECEIPT_CONFIRM_WAIT_MS);
    }
  }

  private inFastConversation(target: string, now: number): boolean {
    const pace = this.pace.get(target);
    return pace !== undefined && pace.fast && now - pace.last <= RECEIPT_RIDE_WAIT_MS;
  }

  private notePace(target: string, now: number): void {
    const pace = this.pace.get(target);
    this.pace.delete(target); // re-inserted last: the map's order is least recently calling first
    if (this.pace.size >= PACE_MEMORY) this.pace.delete(this.pace.keys().next().value!);
    this.pace.set(target, { last: now, fast: pace !== undefined && now - pace.last <= RECEIPT_RIDE_WAIT_MS });
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
        this.alarm.requestBy(Date.now() + RECEIPT_RETRY_MS);
        return;
      }
      for (const owed of batch) this.handedOver.push(owed.id);
    }
  }

  private load(): Owed[] {
    this.settle();
    const stored = this.sql
      .exec<{ id: number; target: string; receipt: string }>("SELECT id, target, receipt FROM receipt_outbox ORDER BY id LIMIT ?", BATCH)
      .toArray();
    // Rows held for a target's next call stay held.
    const held = new Set([
      ...[...this.waiting.values()].flatMap((h) => h.owed.map((o) => o.id)),
      ...[...this.riding.values()].flatMap((carried) => [...carried.values()].map((c) => c.owed.id)),
    ]);
    const rows = stored.filter((r) => !held.has(r.id));
    if (stored.length < BATCH) {
      this.unloaded = false;
      this.memory = [];
    } else {
      const loaded = new Set(rows.map((r) => r.id));
      this.memory = this.memory.filter((o) => !loaded.has(o.id));
    }
    return rows.map((r) => ({ id: r.id, target: r.target, receipt: JSON.parse(r.receipt) as ReceiptDelivery }));
  }
}

function hold(heldBack: Map<string, Held>, target: string, owed: Owed, now: number): void {
  const entry = heldBack.get(target);
  if (entry) entry.owed.push(owed);
  else heldBack.set(target, { owed: [owed], since: now });
}
