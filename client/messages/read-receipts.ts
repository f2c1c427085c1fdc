/** Marking received messages read: the local records, and `read` receipts queued in the outbox per sender. */
import { LIMITS } from "../../src/protocol/limits";
import type { Core } from "../core";
import { put, type WriteOp } from "../store/types";
import type { OrderClock } from "../util/order-clock";
import { findMessage } from "./history";
import { newMessageId } from "./ids";
import { outboxKey } from "./outbox";
import type { MessageRecord, OutboxRead } from "./types";

/**
 * The ops that mark `refs` read (incoming messages not read yet) and queue one receipt per sender and
 * {@link LIMITS.maxReceiptRefs} refs.
 * @example
 * await core.store.write(await markReadOps(core, clock, messages));
 */
export async function markReadOps(core: Core, clock: OrderClock, refs: readonly Pick<MessageRecord, "from" | "fromDevice" | "id">[]): Promise<WriteOp[]> {
  const now = core.now();
  const ops: WriteOp[] = [];
  const bySender = new Map<string, { device: number; id: string }[]>();
  for (const ref of refs) {
    if (ref.from === core.userId) continue;
    const record = await findMessage(core.store, ref.from, ref.fromDevice, ref.id);
    if (!record || record.direction !== "incoming" || record.status === "read") continue;
    ops.push(put("messages", record.key, { ...record, status: "read", readAt: now }));
    const list = bySender.get(ref.from) ?? [];
    if (!list.some((r) => r.device === ref.fromDevice && r.id === ref.id)) list.push({ device: ref.fromDevice, id: ref.id });
    bySender.set(ref.from, list);
  }
  for (const [to, list] of bySender) {
    for (let i = 0; i < list.length; i += LIMITS.maxReceiptRefs) {
      const id = newMessageId();
      const item: OutboxRead = { kind: "read", id, to, refs: list.slice(i, i + LIMITS.maxReceiptRefs) };
      ops.push(put("outbox", outboxKey(clock.next(now), id), item));
    }
  }
  return ops;
}
