/**
 * Receipts of group messages, aggregated per message and member in the GroupDO: members' UserDOs report
 * deliveries and reads here, and only the message's sender hears about them (as counts).
 */
import type { GroupReceiptCounts, GroupReceiptList } from "../src/protocol/groups";
import type { GroupLog } from "./group-log";

export type ReceiptKind = "delivered" | "read";

export class GroupReceipts {
  constructor(
    private readonly sql: SqlStorage,
    private readonly log: GroupLog,
  ) {}

  /**
   * Records that `userId` received or read these messages (a read implies delivery). Returns the new counts
   * per sender, for the messages whose counts changed; a member's own messages and unknown sequences are ignored.
   */
  record(userId: string, kind: ReceiptKind, seqs: number[], at: number): Map<string, GroupReceiptCounts[]> {
    const changed = new Map<string, GroupReceiptCounts[]>();
    for (const seq of new Set(seqs)) {
      const message = this.log.message(seq);
      if (!message || message.sender === userId) continue;
      const written =
        kind === "delivered"
          ? this.sql.exec(
              `INSERT INTO receipts (seq, user_id, delivered_at) VALUES (?, ?, ?)
               ON CONFLICT (seq, user_id) DO UPDATE SET delivered_at = excluded.delivered_at WHERE delivered_at IS NULL`,
              seq,
              userId,
              at,
            ).rowsWritten
          : this.sql.exec(
              `INSERT INTO receipts (seq, user_id, delivered_at, read_at) VALUES (?, ?, ?, ?)
               ON CONFLICT (seq, user_id) DO UPDATE SET read_at = excluded.read_at,
                 delivered_at = COALESCE(delivered_at, excluded.delivered_at) WHERE read_at IS NULL`,
              seq,
              userId,
              at,
              at,
            ).rowsWritten;
      if (written === 0) continue;
      const list = changed.get(message.sender) ?? [];
      list.push(this.counts(seq, message.clientId, message.recipients));
      changed.set(message.sender, list);
    }
    return changed;
  }

  /** Counts and the per-member list of one message. */
  list(seq: number, clientId: string, recipients: number): GroupReceiptList {
    const receipts = this.sql
      .exec<{ user_id: string; delivered_at: number | null; read_at: number | null }>(
        "SELECT user_id, delivered_at, read_at FROM receipts WHERE seq = ? ORDER BY user_id",
        seq,
      )
      .toArray()
      .map((r) => ({ userId: r.user_id, deliveredAt: r.delivered_at, readAt: r.read_at }));
    return { ...this.counts(seq, clientId, recipients), receipts };
  }

  private counts(seq: number, clientId: string, recipients: number): GroupReceiptCounts {
    const row = this.sql
      .exec<{ delivered: number; read: number }>(
        "SELECT COUNT(delivered_at) AS delivered, COUNT(read_at) AS read FROM receipts WHERE seq = ?",
        seq,
      )
      .one();
    return { groupSeq: seq, id: clientId, members: recipients, delivered: row.delivered, read: row.read };
  }
}

/**
 * Pushes new counts to senders live without a storm: one push in flight per sender, and what changes meanwhile
 * goes out in the next push, the latest counts of each message only (counts only grow).
 */
export class LiveCounts {
  private readonly pending = new Map<string, Map<number, GroupReceiptCounts>>();

  constructor(private readonly push: (sender: string, counts: GroupReceiptCounts[]) => Promise<void>) {}

  add(sender: string, counts: GroupReceiptCounts[]): void {
    const queued = this.pending.get(sender);
    const latest = queued ?? new Map<number, GroupReceiptCounts>();
    for (const c of counts) latest.set(c.groupSeq, c);
    if (!queued) {
      this.pending.set(sender, latest);
      void this.flush(sender, latest);
    }
  }

  private async flush(sender: string, latest: Map<number, GroupReceiptCounts>): Promise<void> {
    try {
      while (latest.size > 0) {
        const counts = [...latest.values()];
        latest.clear();
        await this.push(sender, counts);
      }
    } finally {
      this.pending.delete(sender);
    }
  }
}
