/** What the SDK keeps per group and channel: cached state, our sender key, history, pending sends, channel keys. */
import type { GroupEvent, GroupReceiptCounts, GroupSendFrame, GroupState } from "../../src/protocol/groups";
import type { MessageBody } from "../messages/types";

/** A group as this device last saw it (a `GET /v1/groups/:id` answer, kept current by group events). */
export interface GroupRecord extends GroupState {
  /** A change could not be applied locally (we were added, a stale-epoch refusal): fetch the state again before use. */
  stale?: boolean;
  /** We are no longer a member (removed, left). */
  left?: boolean;
}

/**
 * This device's sender key for one group: its distribution id and which members (user ids) have been sent its
 * distribution message. A new distribution replaces it when a member who may hold it left or was removed.
 */
export interface OwnSenderKeyRecord {
  distributionId: string;
  /** The membership epoch the key was created for. */
  epoch: number;
  createdAt: number;
  /** Users whose devices got the distribution message (our own user: our other devices got it as sync copies). */
  sentTo: string[];
  /** Set when a member left or was removed after `epoch`: the next send starts a new distribution. */
  rotate?: boolean;
}

/** A group message (or channel post) in the local history. */
export interface GroupMessageRecord {
  kind: "message";
  group: string;
  groupSeq: number;
  from: string;
  fromDevice: number;
  /** The sender's client message id. */
  id: string;
  /** Server time of storage. */
  ts: number;
  /** The sender's compose time. */
  sentAt: number;
  body: MessageBody;
  direction: "incoming" | "outgoing";
  /** Channel posts: the signature was checked against the posting device's identity key. */
  verified?: boolean;
}

/** A membership change in the local history. */
export interface GroupEventRecord {
  kind: "event";
  group: string;
  groupSeq: number;
  /** The epoch after the change. */
  epoch: number;
  ts: number;
  event: GroupEvent;
}

/** An entry that could not be read (no key, bad signature…): kept so that a redelivery is not tried again. */
export interface GroupSkippedRecord {
  kind: "skipped";
  group: string;
  groupSeq: number;
  reason: string;
}

export type GroupHistoryRecord = GroupMessageRecord | GroupEventRecord | GroupSkippedRecord;

/** A group send (or channel post) waiting for the server's `sent`; `frame` is kept so a retry sends the same bytes. */
export interface GroupOutboxSend {
  kind: "send";
  id: string;
  group: string;
  body: MessageBody;
  sentAt: number;
  frame?: GroupSendFrame;
  /** Stale-epoch refusals in a row (bounded, then the item waits for the next connection). */
  attempts: number;
}

/** A `group_read` waiting for the server's `sent`. */
export interface GroupOutboxRead {
  kind: "read";
  id: string;
  group: string;
  seqs: number[];
}

export type GroupOutboxItem = GroupOutboxSend | GroupOutboxRead;

/** The `groupMessage` event: a stored group message or channel post, with its text when it is text. */
export type GroupMessageEvent = GroupMessageRecord & { text?: string };

/** The `groupEvent` event: a membership change, applied to the local group state. */
export type GroupEventEvent = Omit<GroupEventRecord, "kind">;

/** The `groupReceipts` event: new aggregated receipt counts of messages this account sent. */
export interface GroupReceiptsEvent {
  group: string;
  counts: GroupReceiptCounts[];
}

/** The `groupStatus` event: a `sendToGroup`/`post` was stored by the server (with its group sequence) or refused for good. */
export interface GroupStatusEvent {
  group: string;
  id: string;
  status: "sent" | "failed";
  groupSeq?: number;
}
