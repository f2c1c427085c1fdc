/**
 * Fan-out on write: copies a group's entries into each member's UserDO, from the durable `fanout` table.
 *
 * Rows are written in the same transaction as the log entry they point at, so nothing acknowledged to a
 * sender can be forgotten. One hand-over per member at a time, always starting from that member's oldest
 * owed entry, keeps group order in every inbox; the member's UserDO dedupes on (group, sequence), so a
 * hand-over repeated after a crash or a lost answer lands once. The object's alarm resumes the work after an
 * eviction or a failed member write.
 */

import type { SharedAlarm } from "./shared-alarm";

/** One entry handed to a member's UserDO. */
export interface GroupDelivery {
  /** 0: a channel subscription changed (not an entry of the log; the latest one wins, no dedupe). */
  groupSeq: number;
  /** The entry's JSON (without an inbox seq), when it goes into the member's inboxes. */
  envelope?: string;
  /** The entry is a message from this member's device: not copied to that device, no receipt owed. */
  sender?: { userId: string; deviceId: number };
  kind: "message" | "event";
  /** The member joined (true) or left (false) the group with this entry. */
  membership?: boolean;
}

/**
 * Members handed over to at once. Only FIRST_WAVE start together and each finished hand-over starts up to two
 * more, so the sender's acknowledgement does not queue behind a hundred calls (a local workerd runs every
 * object on one thread).
 */
const CONCURRENCY = 128;
const FIRST_WAVE = 16;
/** Entries per hand-over. */
const BATCH = 200;
/** The safety net for a crash between a write and its fan-out. */
export const FANOUT_SAFETY_NET_MS = 10_000;
const RETRY_MIN_MS = 1_000;
const RETRY_MAX_MS = 60_000;

export class Fanout {
  /** Members waiting for a hand-over slot, in the order they became owed. */
  private readonly queue = new Set<string>();
  /** Members being handed over to now; a member owed more meanwhile is handed over to again after. */
  private readonly active = new Map<string, { again: boolean }>();
  private idle: Promise<void> | null = null;
  private settle: (() => void) | null = null;
  private failedThisRun = false;
  private failures = 0;

  constructor(
    private readonly sql: SqlStorage,
    private readonly alarm: SharedAlarm,
    private readonly handOver: (userId: string, items: GroupDelivery[]) => Promise<void>,
    private readonly onError: (userId: string, error: unknown) => void,
  ) {}

  /** Call in the transaction that wrote `fanout` rows: makes sure an alarm will finish them. */
  armSafetyNet(): void {
    this.alarm.requestBy(Date.now() + FANOUT_SAFETY_NET_MS);
  }

  /**
   * Starts handing over what is owed to every member. Each member is drained on its own, up to CONCURRENCY at
   * once (ramping up from FIRST_WAVE), so a slow or failing member holds one slot and never delays the others.
   * Resolves when nothing is being handed over any more (what failed is left to the alarm).
   */
  kick(): Promise<void> {
    for (const { user_id } of this.sql.exec<{ user_id: string }>("SELECT DISTINCT user_id FROM fanout")) {
      const running = this.active.get(user_id);
      if (running) running.again = true;
      else this.queue.add(user_id);
    }
    for (let i = 0; i < FIRST_WAVE; i++) this.startNext();
    if (this.active.size === 0) return Promise.resolve();
    this.idle ??= new Promise<void>((resolve) => (this.settle = resolve));
    return this.idle;
  }

  /** The alarm fired: finish what is owed, and come back later while something fails. */
  async onAlarm(): Promise<void> {
    await this.kick();
    if (this.owedCount() > 0) this.alarm.requestBy(Date.now() + this.retryDelay());
  }

  private retryDelay(): number {
    return Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** Math.min(this.failures, 6));
  }

  owedCount(): number {
    return this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM fanout").one().n;
  }

  private startNext(): void {
    const [userId] = this.queue;
    if (userId === undefined || this.active.size >= CONCURRENCY) return;
    this.queue.delete(userId);
    const slot = { again: false };
    this.active.set(userId, slot);
    void this.drainUser(userId)
      .catch((error: unknown) => {
        this.onError(userId, error);
        return false;
      })
      .then((delivered) => {
        this.active.delete(userId);
        if (!delivered) this.failedThisRun = true;
        else if (slot.again) this.queue.add(userId);
        this.startNext();
        this.startNext();
        if (this.active.size === 0) this.finishRun();
      });
  }

  private finishRun(): void {
    if (this.failedThisRun) {
      this.failures++;
      this.alarm.requestBy(Date.now() + this.retryDelay());
    } else this.failures = 0;
    this.failedThisRun = false;
    const settle = this.settle;
    this.idle = this.settle = null;
    settle?.();
  }

  /** Hands a member everything owed to them, oldest first; false when a hand-over failed. */
  private async drainUser(userId: string): Promise<boolean> {
    for (;;) {
      const rows = this.sql
        .exec<{ seq: number; store: number; membership: number | null; kind: string | null; sender: string | null; sender_device: number | null; envelope: string | null }>(
          `SELECT f.seq, f.store, f.membership, l.kind, l.sender, l.sender_device, l.envelope
           FROM fanout f LEFT JOIN log l ON l.seq = f.seq WHERE f.user_id = ? ORDER BY f.seq LIMIT ?`,
          userId,
          BATCH,
        )
        .toArray();
      if (rows.length === 0) return true;
      const items = rows.map((r): GroupDelivery => ({
        groupSeq: r.seq,
        kind: r.kind === "message" ? "message" : "event",
        ...(r.store === 1 && r.envelope !== null && { envelope: r.envelope }),
        ...(r.sender !== null && r.sender === userId && { sender: { userId: r.sender, deviceId: r.sender_device ?? 0 } }),
        ...(r.membership !== null && { membership: r.membership === 1 }),
      }));
      await this.handOver(userId, items);
      // A sequence-0 row (a channel subscription) replaced while handed over stays owed; so does anything newer.
      for (const r of rows) {
        this.sql.exec("DELETE FROM fanout WHERE user_id = ? AND seq = ? AND store = ? AND membership IS ?", userId, r.seq, r.store, r.membership);
      }
      if (rows.length < BATCH) return true;
    }
  }
}
