/** The local message history: records by conversation and time, looked up by (from, fromDevice, id). */
import { conversationPrefix, historyKey, messageRefKey } from "../store/keys";
import { put, type RelayStore, type WriteOp } from "../store/types";
import { advances, type MessageBody, type MessageRecord, type MessageStatus } from "./types";

/**
 * A new outgoing message, not yet stored.
 * @example
 * const record = outgoingMessage({ id, from: me, fromDevice: 1, to: bobId, body: { text: "hi" }, sentAt: Date.now() }, clock.next(Date.now()));
 */
export function outgoingMessage(m: { id: string; from: string; fromDevice: number; to: string; body: MessageBody; sentAt: number }, order: number): MessageRecord {
  const ref = messageRefKey(m.from, m.fromDevice, m.id);
  return { ...m, conversation: m.to, direction: "outgoing", status: "pending", key: historyKey(m.to, order, ref) };
}

/**
 * The ops that store `record` and index it by its ref.
 * @example
 * await store.write(storeMessageOps(record));
 */
export function storeMessageOps(record: MessageRecord): WriteOp[] {
  return [put("messages", record.key, record), put("messageIndex", messageRefKey(record.from, record.fromDevice, record.id), record.key)];
}

/**
 * The message a sender names with (from, fromDevice, id), if this device has it.
 * @example
 * const message = await findMessage(store, me, ref.device, ref.id);
 */
export async function findMessage(store: RelayStore, from: string, fromDevice: number, id: string): Promise<MessageRecord | undefined> {
  const key = await store.get("messageIndex", messageRefKey(from, fromDevice, id));
  return key ? store.get("messages", key) : undefined;
}

/**
 * Moves `record` to `status` when that is a step forward; returns the updated record (or undefined: no change).
 * @example
 * const updated = advanceStatus(record, "delivered");
 * if (updated) await store.write([put("messages", updated.key, updated)]);
 */
export function advanceStatus(record: MessageRecord, status: MessageStatus, serverTs?: number): MessageRecord | undefined {
  if (!advances(record.status, status)) return undefined;
  return { ...record, status, ...(serverTs !== undefined && record.serverTs === undefined && { serverTs }) };
}

/** Which part of a conversation to list. */
export interface HistoryQuery {
  /** At most this many (default 50), the newest ones. */
  limit?: number;
  /** Only messages before this history key (paging backwards: pass the oldest `key` you have). */
  before?: string;
}

/**
 * The newest messages of `conversation` (oldest first).
 * @example
 * const page = await listMessages(store, bobId, { limit: 20 });
 */
export async function listMessages(store: RelayStore, conversation: string, query: HistoryQuery = {}): Promise<MessageRecord[]> {
  const entries = await store.list("messages", {
    prefix: conversationPrefix(conversation),
    ...(query.before !== undefined && { before: query.before }),
    limit: query.limit ?? 50,
    reverse: true,
  });
  return entries.map((e) => e.value).reverse();
}
