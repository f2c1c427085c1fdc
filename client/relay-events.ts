/** The events a `Relay` emits. */
import type { LoggedOutError } from "./errors";
import type { MessageRecord, MessageStatus } from "./messages/types";
import type { ConnectionState } from "./transport/connection";
import type { GroupEventEvent, GroupMessageEvent, GroupReceiptsEvent, GroupStatusEvent } from "./groups/types";

export interface RelayEvents {
  /** A message arrived (from another user, or a copy of one your other device sent), already stored. */
  message: MessageRecord;
  /** An outgoing message moved on: pending (queued by `send`) → sent (stored by the server) → delivered → read, or failed. */
  status: { id: string; conversation: string; status: MessageStatus; message: MessageRecord };
  /**
   * A device of `userId` presented a different identity key than the one known for it. Messages to that
   * user wait and messages from that device are held (not shown) until you call `relay.trustIdentity(userId)`.
   */
  identityChanged: { userId: string; deviceId: number };
  /** The connection's state changed. */
  connection: { state: ConnectionState; code?: number; reason?: string; delayMs?: number };
  /** This device was signed out (removed, re-registered elsewhere, or its refresh token refused). */
  loggedOut: LoggedOutError;
  /** A group message or channel post arrived (decrypted, verified for channels, already stored), in group order. */
  groupMessage: GroupMessageEvent;
  /** A group's membership changed (created, added, removed, left, joined, role, info), in group order; the local state follows it. */
  groupEvent: GroupEventEvent;
  /** New aggregated delivered/read counts of group messages this account sent. */
  groupReceipts: GroupReceiptsEvent;
  /** A `sendToGroup` or `post` was stored by the server (`sent`, with its group sequence) or refused for good (`failed`). */
  groupStatus: GroupStatusEvent;
  /** Something failed in the background (a message that did not decrypt, a key upload that failed…). */
  error: unknown;
}
