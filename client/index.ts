/**
 * Relay's client SDK (browser-safe entry: no Node built-ins). Node apps that want a SQLite store import
 * `client/node.ts`, which re-exports all of this.
 *
 * @example
 * import { Relay, IndexedDbStore } from "relay/client";
 * const store = await IndexedDbStore.open("relay");
 * const relay = await Relay.register({ url: "https://relay.example", phone: "+14155550101", store, code: () => prompt("SMS code?")! });
 * relay.on("message", (m) => console.log(m.from, "text" in m.body ? m.body.text : m.body.bytes));
 * await relay.send(bobId, "hi");
 */
export { Relay, PendingRegistration, type RelayOptions, type RegisterOptions, type LinkOptions, type SendContent, type MessageRefLike } from "./relay";
export type { RelayEvents } from "./relay-events";
export type { MessageRecord, MessageStatus, MessageBody } from "./messages/types";
export type { HistoryQuery } from "./messages/history";
export type { KeyMaintenance } from "./keys/maintenance";
export { UndecryptableMessageError } from "./messages/receiver";
export { RelayApiError, LoggedOutError, NoAccountError, ConnectionClosedError } from "./errors";
export { CLIENT_DEFAULTS, type Tuning } from "./limits";
export type { ConnectionState, WebSocketConstructor } from "./transport/connection";
export { MemoryStore } from "./store/memory";
export { IndexedDbStore } from "./store/indexeddb";
export { RelaySenderKeyStore } from "./store/sender-key-store";
export type { RelayStore, Tables, TableName, WriteOp, KeyRange, Entry, AccountRecord } from "./store/types";
export { formatSafetyNumber, safetyNumbersEqual } from "./crypto/fingerprint";
export { RelayGroups, type GroupHistoryQuery } from "./groups/relay-groups";
export { GroupMessageError, type GroupMessageErrorReason } from "./groups/receive";
export { parseInviteLink, inviteLink } from "./groups/channel-crypto";
export type {
  GroupRecord,
  GroupHistoryRecord,
  GroupMessageRecord,
  GroupEventRecord,
  GroupSkippedRecord,
  GroupMessageEvent,
  GroupEventEvent,
  GroupReceiptsEvent,
  GroupStatusEvent,
  OwnSenderKeyRecord,
  GroupOutboxItem,
} from "./groups/types";
export type { GroupState, GroupMember, GroupRole, GroupKind, GroupEvent, GroupMembership, GroupReceiptCounts, GroupReceiptList, InviteResponse, JoinResponse, JoinRequest } from "../src/protocol/groups";
