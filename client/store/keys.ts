/** The shapes of the SDK's store keys, in one place (fixed-width numbers so that key order is numeric order). */

/**
 * A number as a fixed-width, order-preserving key part.
 * @example
 * numberKey(42, 8); // "00000042"
 */
export function numberKey(n: number, width = 15): string {
  return String(n).padStart(width, "0");
}

/**
 * `userId.deviceId`: sessions, identities and pending identities.
 * @example
 * addressKey(bobId, 2); // "<bobId>.2"
 */
export function addressKey(userId: string, deviceId: number): string {
  return `${userId}.${deviceId}`;
}

/**
 * The prefix of every address key of `userId`.
 * @example
 * await store.list("sessions", { prefix: userPrefix(bobId) });
 */
export function userPrefix(userId: string): string {
  return `${userId}.`;
}

/**
 * Splits an {@link addressKey}.
 * @example
 * parseAddressKey("<bobId>.2"); // { userId: "<bobId>", deviceId: 2 }
 */
export function parseAddressKey(key: string): { userId: string; deviceId: number } {
  const dot = key.lastIndexOf(".");
  return { userId: key.slice(0, dot), deviceId: Number(key.slice(dot + 1)) };
}

/**
 * One message as its sender names it: (from, fromDevice, id).
 * @example
 * await store.get("messageIndex", messageRefKey(from, fromDevice, id));
 */
export function messageRefKey(from: string, fromDevice: number, id: string): string {
  return `${from}.${fromDevice}.${id}`;
}

/**
 * A message's key in the history: conversation, then order (see `util/order-clock.ts`), then its ref.
 * @example
 * historyKey(bobId, clock.next(Date.now()), messageRefKey(me, 1, id));
 */
export function historyKey(conversation: string, order: number, ref: string): string {
  return `${conversation}|${numberKey(order, 17)}|${ref}`;
}

/**
 * The prefix of every history key of `conversation`.
 * @example
 * await store.list("messages", { prefix: conversationPrefix(bobId) });
 */
export function conversationPrefix(conversation: string): string {
  return `${conversation}|`;
}

/**
 * A group history entry: group, then its group sequence.
 * @example
 * await store.get("groupHistory", groupHistoryKey(groupId, 12));
 */
export function groupHistoryKey(groupId: string, groupSeq: number): string {
  return `${groupId}|${numberKey(groupSeq)}`;
}

/** Fixed meta keys. */
export const META = { account: "account", identity: "identity", keyState: "keyState" } as const;
