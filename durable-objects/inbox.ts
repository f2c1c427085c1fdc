/**
 * A user's devices and their ordered inboxes in the UserDO's SQLite: one row per envelope per device,
 * a strictly increasing sequence per device, and deletion only on acknowledgement.
 *
 * Sequences are reserved in blocks: `devices.next_seq` is always past every sequence handed out, and is written
 * once per block rather than on every append or acknowledgement. After a restart a device's sequence resumes
 * at the end of its block, so sequences can skip numbers but never go back.
 */
import type { MessageRef, OutgoingMessage, ReceiptEnvelope } from "../src/protocol/frames";
import type { RegisteredDevice } from "./device-check";

export interface DeviceRecord extends RegisteredDevice {
  family: string;
  nextSeq: number;
  /** The stored `next_seq`: sequences below it may have been handed out. */
  reservedSeq: number;
}

/** Sequences reserved by one write of `devices.next_seq`. */
const SEQ_BLOCK = 1024;

/** A stored envelope, ready to frame: `json` is the envelope object with its seq. */
export interface StoredEnvelope {
  seq: number;
  json: string;
}

/** A delivered or read receipt travelling from the user who received messages to their sender. */
export interface ReceiptDelivery {
  /** Unique per receipt; the receiving UserDO dedupes on (from, fromDevice, id). */
  id: string;
  receipt: ReceiptEnvelope["receipt"];
  from: string;
  fromDevice: number;
  refs: MessageRef[];
  ts: number;
}

/** Acked messages from other users, whose senders now owe a delivered receipt. */
export interface AckedMessage {
  sender: string;
  senderDevice: number;
  clientId: string;
}

/** Where a stored message came from: sender, sender device, client id, shared — or nothing (no receipt owed). */
type Origin = [string | null, number | null, string | null, number];
const NO_ORIGIN: Origin = [null, null, null, 0];

/** The sender name under which a group's entries are deduped and their delivered receipts owed. */
export const groupOrigin = (groupId: string) => `group:${groupId}`;
export const GROUP_ORIGIN_PREFIX = "group:";

const withSeq = (seq: number, envelope: string) => `{"seq":${seq},${envelope.slice(1)}`;

export class Inbox {
  readonly devices = new Map<number, DeviceRecord>();
  private readonly origins = new RecentOrigins();

  constructor(private readonly sql: SqlStorage) {
    // Objects created before sequences were reserved kept next_seq with a trigger; their envelopes carry the rest.
    for (const row of sql.exec<{ device_id: number; registration_id: number; family: string; next_seq: number }>(
      `SELECT device_id, registration_id, family,
              MAX(next_seq, COALESCE((SELECT MAX(seq) + 1 FROM inbox WHERE inbox.device_id = devices.device_id), 0)) AS next_seq
       FROM devices`,
    )) {
      this.devices.set(row.device_id, { registrationId: row.registration_id, family: row.family, nextSeq: row.next_seq, reservedSeq: row.next_seq });
      this.origins.reset(row.device_id, row.next_seq);
    }
  }

  /** Adds or replaces a device. A replaced device id starts over: its old inbox was encrypted for another device. */
  putDevice(deviceId: number, registrationId: number, family: string): void {
    const previous = this.devices.get(deviceId);
    const nextSeq = previous?.nextSeq ?? 1;
    this.sql.exec("DELETE FROM inbox WHERE device_id = ?", deviceId);
    this.sql.exec(
      "INSERT OR REPLACE INTO devices (device_id, registration_id, family, next_seq) VALUES (?, ?, ?, ?)",
      deviceId,
      registrationId,
      family,
      nextSeq,
    );
    this.devices.set(deviceId, { registrationId, family, nextSeq, reservedSeq: nextSeq });
    this.origins.reset(deviceId, nextSeq);
  }

  removeDevice(deviceId: number): void {
    this.sql.exec("DELETE FROM inbox WHERE device_id = ?", deviceId);
    this.sql.exec("DELETE FROM devices WHERE device_id = ?", deviceId);
    this.devices.delete(deviceId);
    this.origins.forget(deviceId);
  }

  setFamily(deviceId: number, family: string): void {
    const device = this.devices.get(deviceId);
    if (!device) return;
    this.sql.exec("UPDATE devices SET family = ? WHERE device_id = ?", family, deviceId);
    device.family = family;
  }

  /** The server timestamp of an already accepted (sender, device, client id), if any. */
  acceptedAt(sender: string, senderDevice: number, clientId: string): number | undefined {
    const row = this.sql
      .exec<{ ts: number }>(
        "SELECT ts FROM received WHERE sender = ? AND sender_device = ? AND client_id = ?",
        sender,
        senderDevice,
        clientId,
      )
      .toArray()[0];
    return row?.ts;
  }

  /**
   * Remembers an accepted send so a retry is acknowledged, not stored again. Returns the timestamp of the
   * first acceptance when this (sender, device, client id) was accepted before, else undefined.
   */
  accept(sender: string, senderDevice: number, clientId: string, ts: number): number | undefined {
    const inserted = this.sql.exec(
      "INSERT OR IGNORE INTO received (sender, sender_device, client_id, ts) VALUES (?, ?, ?, ?)",
      sender,
      senderDevice,
      clientId,
      ts,
    ).rowsWritten;
    return inserted > 0 ? undefined : this.acceptedAt(sender, senderDevice, clientId);
  }

  /** Forgets accepted sends older than `before` (retries older than the dedupe window are not expected). */
  forgetAcceptedBefore(before: number): void {
    this.sql.exec("DELETE FROM received WHERE ts < ?", before);
  }

  /** Appends a message for each addressed device; returns what was stored, per device. */
  storeMessages(
    sender: string,
    senderDevice: number,
    clientId: string,
    ts: number,
    messages: readonly OutgoingMessage[],
    receiptOwed: boolean,
  ): Map<number, StoredEnvelope> {
    const stored = new Map<number, StoredEnvelope>();
    const shared = messages.length > 1 ? 1 : 0;
    for (const message of messages) {
      const envelope = JSON.stringify({
        kind: "message",
        from: sender,
        fromDevice: senderDevice,
        id: clientId,
        ts,
        type: message.type,
        body: message.body,
      });
      const origin: Origin = receiptOwed ? [sender, senderDevice, clientId, shared] : NO_ORIGIN;
      stored.set(message.device, this.append(message.device, envelope, origin));
    }
    return stored;
  }

  /**
   * Appends a group entry for every device of this user but `exceptDevice` (the one that sent it). `receiptFor`:
   * the group and sequence whose first acknowledgement owes the group a delivered receipt.
   */
  storeGroupEntry(envelope: string, exceptDevice: number | undefined, receiptFor?: { group: string; seq: number }): Map<number, StoredEnvelope> {
    const stored = new Map<number, StoredEnvelope>();
    const devices = [...this.devices.keys()].filter((d) => d !== exceptDevice);
    const origin: Origin = receiptFor ? [groupOrigin(receiptFor.group), 0, String(receiptFor.seq), devices.length > 1 ? 1 : 0] : NO_ORIGIN;
    for (const deviceId of devices) stored.set(deviceId, this.append(deviceId, envelope, origin));
    return stored;
  }

  /** Appends a receipt for each of `devices` (every device of this user by default); returns what was stored, per device. */
  storeReceipt(receipt: ReceiptDelivery, devices: Iterable<number> = this.devices.keys()): Map<number, StoredEnvelope> {
    const envelope = JSON.stringify({
      kind: "receipt",
      receipt: receipt.receipt,
      from: receipt.from,
      fromDevice: receipt.fromDevice,
      refs: receipt.refs,
      ts: receipt.ts,
    });
    const stored = new Map<number, StoredEnvelope>();
    for (const deviceId of devices) stored.set(deviceId, this.append(deviceId, envelope, NO_ORIGIN));
    return stored;
  }

  private append(deviceId: number, envelope: string, origin: Origin): StoredEnvelope {
    const device = this.devices.get(deviceId);
    if (!device) throw new Error(`no device ${deviceId}`);
    const seq = device.nextSeq++;
    if (device.nextSeq > device.reservedSeq) {
      device.reservedSeq = seq + SEQ_BLOCK;
      this.sql.exec("UPDATE devices SET next_seq = ? WHERE device_id = ?", device.reservedSeq, deviceId);
    }
    this.sql.exec(
      "INSERT INTO inbox (device_id, seq, sender, sender_device, client_id, shared, envelope) VALUES (?, ?, ?, ?, ?, ?, ?)",
      deviceId,
      seq,
      ...origin,
      envelope,
    );
    this.origins.appended(deviceId, seq, origin[0]);
    return { seq, json: withSeq(seq, envelope) };
  }

  /** Envelopes of `deviceId` after `afterSeq`, in order, at most `limit` of them and about `maxBytes`. */
  page(deviceId: number, afterSeq: number, limit: number, maxBytes: number): StoredEnvelope[] {
    const out: StoredEnvelope[] = [];
    let bytes = 0;
    for (const row of this.sql.exec<{ seq: number; envelope: string }>(
      "SELECT seq, envelope FROM inbox WHERE device_id = ? AND seq > ? ORDER BY seq LIMIT ?",
      deviceId,
      afterSeq,
      limit,
    )) {
      if (out.length > 0 && bytes + row.envelope.length > maxBytes) break;
      bytes += row.envelope.length;
      out.push({ seq: row.seq, json: withSeq(row.seq, row.envelope) });
    }
    return out;
  }

  /** Whether envelopes after `seq` are stored for the device. */
  hasAfter(deviceId: number, seq: number): boolean {
    return (this.devices.get(deviceId)?.nextSeq ?? 0) - 1 > seq;
  }

  /** The highest sequence this device has acknowledged (everything before its oldest stored envelope). */
  ackedUpTo(deviceId: number): number {
    const row = this.sql
      .exec<{ oldest: number | null }>("SELECT MIN(seq) AS oldest FROM inbox WHERE device_id = ?", deviceId)
      .one();
    const device = this.devices.get(deviceId);
    return row.oldest !== null ? row.oldest - 1 : (device?.nextSeq ?? 1) - 1;
  }

  pendingCount(deviceId: number): number {
    return this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM inbox WHERE device_id = ?", deviceId).one().n;
  }

  /**
   * The senders owed a delivered receipt by the device's envelopes in (`after`, `upTo`], from memory (no SQL: the
   * first statement of an event is its most expensive); undefined when this object does not know them all.
   */
  sendersBetween(deviceId: number, after: number, upTo: number): string[] | undefined {
    return this.origins.sendersBetween(deviceId, after, upTo);
  }

  /**
   * Deletes the device's envelopes up to `upTo` and returns the acked messages whose sender is owed a
   * delivered receipt (the first acknowledgement of a message by any of this user's devices).
   */
  acknowledge(deviceId: number, upTo: number): AckedMessage[] {
    const owed: AckedMessage[] = [];
    this.origins.acknowledged(deviceId, upTo);
    for (const row of this.sql.exec<{ sender: string | null; sender_device: number | null; client_id: string | null; shared: number }>(
      "DELETE FROM inbox WHERE device_id = ? AND seq <= ? RETURNING sender, sender_device, client_id, shared",
      deviceId,
      upTo,
    )) {
      if (row.sender === null || row.sender_device === null || row.client_id === null) continue;
      const message = { sender: row.sender, senderDevice: row.sender_device, clientId: row.client_id };
      // A message stored for one device only is acknowledged once: no bookkeeping needed.
      if (row.shared === 0 || this.firstDelivery(message)) owed.push(message);
    }
    return owed;
  }

  private firstDelivery(m: AckedMessage): boolean {
    return (
      this.sql.exec(
        "UPDATE received SET delivered = 1 WHERE sender = ? AND sender_device = ? AND client_id = ? AND delivered = 0",
        m.sender,
        m.senderDevice,
        m.clientId,
      ).rowsWritten > 0
    );
  }
}

/** Envelopes remembered per device before the object stops knowing them all (then it asks SQLite again). */
const MAX_RECENT_ORIGINS = 2_048;

/** The senders of each device's unacknowledged envelopes stored while this object lives, in sequence order. */
class RecentOrigins {
  /** Per device: sequences from `from` on are all known; `senders` lists those with a sender, oldest first. */
  private readonly byDevice = new Map<number, { from: number; senders: { seq: number; sender: string }[] }>();

  reset(deviceId: number, nextSeq: number): void {
    this.byDevice.set(deviceId, { from: nextSeq, senders: [] });
  }

  forget(deviceId: number): void {
    this.byDevice.delete(deviceId);
  }

  appended(deviceId: number, seq: number, sender: string | null): void {
    const known = this.byDevice.get(deviceId);
    if (!known || sender === null) return;
    if (known.senders.length >= MAX_RECENT_ORIGINS) this.reset(deviceId, seq + 1);
    else known.senders.push({ seq, sender });
  }

  acknowledged(deviceId: number, upTo: number): void {
    const known = this.byDevice.get(deviceId);
    if (!known) return;
    let drop = 0;
    while (drop < known.senders.length && known.senders[drop]!.seq <= upTo) drop++;
    if (drop > 0) known.senders.splice(0, drop);
  }

  sendersBetween(deviceId: number, after: number, upTo: number): string[] | undefined {
    const known = this.byDevice.get(deviceId);
    if (!known || after + 1 < known.from) return undefined;
    const senders = new Set<string>();
    for (const { seq, sender } of known.senders) {
      if (seq > upTo) break;
      if (seq > after) senders.add(sender);
    }
    return [...senders];
  }
}
