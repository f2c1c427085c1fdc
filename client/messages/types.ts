/** Messages as the app sees them, and the outbox items the SDK keeps until the server acknowledges them. */
import type { MessageRef, ReadFrame, SendFrame } from "../../src/protocol/frames";

/** Ticks of an outgoing message, in order; `failed`: the server refused it for good (e.g. unknown recipient). */
export type MessageStatus = "pending" | "sent" | "delivered" | "read" | "failed";

/** What a message carries: text or bytes. */
export type MessageBody = { text: string } | { bytes: Uint8Array };

/** One message in the local history. */
export interface MessageRecord {
  /** The sender's client message id (unique per sending device). */
  id: string;
  /** The other user of the conversation (your own user id for notes to self). */
  conversation: string;
  direction: "incoming" | "outgoing";
  /** Sending user and device. */
  from: string;
  fromDevice: number;
  /** Receiving user. */
  to: string;
  body: MessageBody;
  /** When the sender composed it (the sender's clock, ms since the epoch). */
  sentAt: number;
  /** When the server stored it (server clock), once known. */
  serverTs?: number;
  /** Outgoing messages: the furthest tick reached. Incoming: `delivered` (stored here) until you mark it read, then `read`. */
  status: MessageStatus;
  /** Incoming messages: when you marked it read. */
  readAt?: number;
  /** The history key (conversation, time, ref) this record is stored at. */
  key: string;
}

/** A send waiting for the server's `sent`. `frame`: the encrypted frame, kept so a retry sends the same bytes. */
export interface OutboxSend {
  kind: "send";
  id: string;
  to: string;
  /** History key of the message. */
  messageKey: string;
  body: MessageBody;
  sentAt: number;
  frame?: Required<SendFrame>;
  /** Consecutive device-list repairs without success (bounded, then the item waits for the next connection). */
  repairs: number;
  /** Set while a changed identity of the recipient (or of an own device) waits for `trustIdentity`. */
  blockedBy?: string;
}

/** A read receipt waiting for the server's `sent`. */
export interface OutboxRead {
  kind: "read";
  id: string;
  to: string;
  refs: MessageRef[];
  frame?: ReadFrame;
}

export type OutboxItem = OutboxSend | OutboxRead;

const ORDER: Record<MessageStatus, number> = { pending: 0, sent: 1, delivered: 2, read: 3, failed: -1 };

/**
 * Whether `next` moves a message's status forward (ticks never go back; `failed` only replaces `pending`).
 * @example
 * advances("sent", "delivered"); // true
 * advances("read", "delivered"); // false
 */
export function advances(current: MessageStatus, next: MessageStatus): boolean {
  if (next === "failed") return current === "pending";
  if (current === "failed") return false;
  return ORDER[next] > ORDER[current];
}
