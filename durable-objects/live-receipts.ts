/**
 * Delivered receipts that rode a `deliver` answer back to this user's object, pushed to this user's online devices
 * without storing them (`receipts` frames). The recipient's object keeps each one in its outbox until this object
 * confirms it, which it does once every device it was pushed to has acknowledged it. So a tick costs this object
 * no write while its devices are online, and is still never lost: after a dropped socket or a restart of this
 * object nothing is confirmed, the recipient's alarm hands the receipts over again, and they are stored.
 *
 * Memory only, and bounded: forgetting a push is always safe (its receipts come again and are stored).
 */
import type { LiveReceipt } from "../src/protocol/frames";
import type { ReceiptDelivery } from "./inbox";

/** A device's socket that has been sent everything stored for it. */
export interface LiveTarget {
  ws: WebSocket;
  device: number;
}

/** Pushed batches remembered until acknowledged; beyond this the oldest is forgotten. */
const MAX_BATCHES = 4_096;
/** Users whose receipts are tracked (the people this user currently writes to), and receipts tracked per user. */
const MAX_SENDERS = 256;
const MAX_PER_SENDER = 4_096;

export class LiveReceipts {
  /** Batch ids are unique per object lifetime, so an acknowledgement meant for an earlier lifetime matches nothing. */
  private readonly lifetime = crypto.randomUUID().slice(0, 8);
  private counter = 0;
  private readonly batches = new Map<string, { device: number; from: string; ids: string[] }>();
  /** Per user who owes receipts: receipt id → pushes not yet acknowledged (0: every device has it). */
  private readonly pending = new Map<string, Map<string, number>>();
  /** Per user: receipts every device has, not yet confirmed to that user's object. */
  private readonly confirmable = new Map<string, string[]>();

  /** Whether every device has this receipt (pushed and acknowledged everywhere, or stored). */
  has(from: string, id: string): boolean {
    return this.pending.get(from)?.get(id) === 0;
  }

  /** Pushes receipts owed by `from` to each target; with no target they count as had (they were stored). */
  push(from: string, receipts: ReceiptDelivery[], targets: LiveTarget[]): void {
    const tracked = this.trackedFor(from);
    for (const receipt of receipts) tracked.set(receipt.id, targets.length);
    if (targets.length === 0) {
      this.addConfirmable(from, receipts.map((r) => r.id));
      return;
    }
    const ids = receipts.map((r) => r.id);
    const live = receipts.map(toLive);
    for (const { ws, device } of targets) {
      const batch = `${this.lifetime}.${++this.counter}`;
      this.batches.set(batch, { device, from, ids });
      if (this.batches.size > MAX_BATCHES) this.batches.delete(this.batches.keys().next().value!);
      try {
        ws.send(JSON.stringify({ type: "receipts", batch, receipts: live }));
      } catch {
        // the socket is closing: never acknowledged, so these receipts come again and are stored
      }
    }
  }

  /** Receipts stored in this user's inbox: if they were pushed, every device has them now (the storing call confirms them). */
  stored(from: string, ids: readonly string[]): void {
    const tracked = this.pending.get(from);
    for (const id of ids) if (tracked?.has(id)) tracked.set(id, 0);
  }

  /** `device` acknowledged these batches; batches it was not sent are ignored. */
  acknowledged(device: number, batches: readonly string[]): void {
    for (const batch of batches) {
      const pushed = this.batches.get(batch);
      if (!pushed || pushed.device !== device) continue;
      this.batches.delete(batch);
      const tracked = this.pending.get(pushed.from);
      const done: string[] = [];
      for (const id of pushed.ids) {
        const left = tracked?.get(id);
        if (left === undefined || left === 0) continue;
        tracked!.set(id, left - 1);
        if (left === 1) done.push(id);
      }
      this.addConfirmable(pushed.from, done);
    }
  }

  /** The receipts to confirm in the next call to `from`'s object (taken: put them back if that call fails). */
  takeConfirmable(from: string): string[] {
    const ids = this.confirmable.get(from) ?? [];
    this.confirmable.delete(from);
    return ids;
  }

  putBack(from: string, ids: string[]): void {
    if (ids.length > 0) this.addConfirmable(from, ids);
  }

  private addConfirmable(from: string, ids: string[]): void {
    if (ids.length === 0) return;
    const list = this.confirmable.get(from);
    if (list) list.push(...ids.slice(0, MAX_PER_SENDER - list.length));
    else this.confirmable.set(from, ids.slice(0, MAX_PER_SENDER));
  }

  private trackedFor(from: string): Map<string, number> {
    let tracked = this.pending.get(from);
    this.pending.delete(from); // re-inserted last: the least recently used user goes first
    if (!tracked) {
      tracked = new Map();
      if (this.pending.size >= MAX_SENDERS) {
        const oldest = this.pending.keys().next().value!;
        this.pending.delete(oldest);
        this.confirmable.delete(oldest);
      }
    }
    this.pending.set(from, tracked);
    while (tracked.size >= MAX_PER_SENDER) tracked.delete(tracked.keys().next().value!);
    return tracked;
  }
}

function toLive(receipt: ReceiptDelivery): LiveReceipt {
  return { kind: "receipt", receipt: receipt.receipt, from: receipt.from, fromDevice: receipt.fromDevice, refs: receipt.refs, ts: receipt.ts };
}
