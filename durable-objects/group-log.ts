/**
 * A group's ordered log: every message and membership event gets the next group sequence. Entries are
 * kept for members reading by cursor (fan-out on read, history) up to `LIMITS.groupLogRetention`; older
 * ones are dropped once nothing owes them to a member.
 */
import type { GroupEvent, GroupEventEnvelope, GroupMessage } from "../src/protocol/groups";
import { LIMITS } from "../src/protocol/limits";

/** Trim the log every this many entries (trimming scans, appending does not). */
const TRIM_EVERY = 100;

export interface StoredMessage {
  seq: number;
  ts: number;
}

export class GroupLog {
  constructor(private readonly sql: SqlStorage) {}

  /** The latest sequence (0 for an empty group). */
  head(): number {
    return this.sql.exec<{ head: number | null }>("SELECT MAX(seq) AS head FROM log").one().head ?? 0;
  }

  /** The sequence and time of a message this sender device already sent with this client id. */
  sentBefore(sender: string, senderDevice: number, clientId: string): StoredMessage | undefined {
    return this.sql
      .exec<{ seq: number; ts: number }>(
        "SELECT seq, ts FROM log WHERE sender = ? AND sender_device = ? AND client_id = ?",
        sender,
        senderDevice,
        clientId,
      )
      .toArray()[0];
  }

  appendMessage(message: Omit<GroupMessage, "kind" | "groupSeq">, recipients: number): StoredMessage & { json: string } {
    const seq = this.head() + 1;
    const { group, ...rest } = message;
    const json = JSON.stringify({ kind: "group_message", group, groupSeq: seq, ...rest } satisfies GroupMessage);
    this.sql.exec(
      "INSERT INTO log (seq, kind, sender, sender_device, client_id, ts, recipients, envelope) VALUES (?, 'message', ?, ?, ?, ?, ?, ?)",
      seq,
      message.from,
      message.fromDevice,
      message.id,
      message.ts,
      recipients,
      json,
    );
    this.trim(seq);
    return { seq, ts: message.ts, json };
  }

  appendEvent(group: string, epoch: number, event: GroupEvent, ts: number): number {
    const seq = this.head() + 1;
    const entry: GroupEventEnvelope = { kind: "group_event", group, groupSeq: seq, epoch, ts, event };
    this.sql.exec("INSERT INTO log (seq, kind, ts, envelope) VALUES (?, 'event', ?, ?)", seq, ts, JSON.stringify(entry));
    this.trim(seq);
    return seq;
  }

  /** Entries with a sequence above `after` and at least `from`, in order, as a JSON array text. */
  page(after: number, from: number, limit: number): { json: string; last: number; messages: { seq: number; sender: string | null }[] } {
    const rows = this.sql
      .exec<{ seq: number; kind: string; sender: string | null; envelope: string }>(
        "SELECT seq, kind, sender, envelope FROM log WHERE seq > ? AND seq >= ? ORDER BY seq LIMIT ?",
        after,
        from,
        limit,
      )
      .toArray();
    return {
      json: `[${rows.map((r) => r.envelope).join(",")}]`,
      last: rows[rows.length - 1]?.seq ?? after,
      messages: rows.filter((r) => r.kind === "message").map((r) => ({ seq: r.seq, sender: r.sender })),
    };
  }

  message(seq: number): { sender: string; clientId: string; recipients: number } | undefined {
    return this.sql
      .exec<{ sender: string; client_id: string; recipients: number }>(
        "SELECT sender, client_id, recipients FROM log WHERE seq = ? AND kind = 'message'",
        seq,
      )
      .toArray()
      .map((r) => ({ sender: r.sender, clientId: r.client_id, recipients: r.recipients }))[0];
  }

  private trim(seq: number): void {
    if (seq % TRIM_EVERY !== 0 || seq <= LIMITS.groupLogRetention) return;
    const below = seq - LIMITS.groupLogRetention;
    this.sql.exec("DELETE FROM log WHERE seq <= ? AND seq NOT IN (SELECT seq FROM fanout)", below);
    this.sql.exec("DELETE FROM receipts WHERE seq <= ?", below);
  }
}
