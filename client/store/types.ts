/**
 * The pluggable storage contract of the SDK: a handful of named tables of records, read by key or key
 * range and written in atomic batches. Everything the SDK keeps (account and tokens, this device's
 * keys, 1:1 sessions and trusted identities, sender keys, message history, the outbox) lives in these
 * tables; {@link MemoryStore}, `IndexedDbStore` (browsers) and `SqliteStore` (Node, from `client/node.ts`)
 * implement it, and an app can bring its own.
 *
 * Atomicity is the one hard requirement: a {@link RelayStore.write} batch lands whole or not at all. The SDK
 * relies on it to store a decrypted message together with the session state that decrypted it (so a crash
 * can never leave a message acknowledged but lost, or a ratchet advanced but the message missing).
 */
import type { KeyPair, KyberKeyPair } from "../crypto/index";
import type { Session } from "../../src/protocol/http";
import type { Envelope } from "../../src/protocol/frames";
import type { MessageRecord, OutboxItem } from "../messages/types";
import type { GroupHistoryRecord, GroupOutboxItem, GroupRecord, OwnSenderKeyRecord } from "../groups/types";

/** This device's account: who it is and its current tokens. */
export interface AccountRecord {
  userId: string;
  deviceId: number;
  /** Base URL of the Relay server the account lives on. */
  url: string;
  session: Session;
  phone?: string;
}

/** This device's long-term identity. */
export interface LocalIdentityRecord {
  identity: KeyPair;
  registrationId: number;
}

/** Counters and schedule of the device's prekeys. */
export interface KeyStateRecord {
  nextPreKeyId: number;
  nextKyberPreKeyId: number;
  nextSignedPreKeyId: number;
  /** Id of the signed EC prekey the server currently hands out. */
  signedPreKeyId: number;
  /** Id of the last-resort Kyber prekey the server currently hands out. */
  kyberLastResortId: number;
  /** When the signed and last-resort prekeys were last rotated (ms since the epoch). */
  rotatedAt: number;
}

/** A one-time EC prekey's private half. `replacedAt`: when an upload superseded the pool it was in. */
export interface PreKeyRecord {
  keyPair: KeyPair;
  createdAt: number;
  replacedAt?: number;
}

/** A signed EC prekey with its private half. */
export interface SignedPreKeyRecord {
  keyPair: KeyPair;
  signature: Uint8Array;
  createdAt: number;
  replacedAt?: number;
}

/** A Kyber prekey (one-time or last-resort) with its secret half. */
export interface KyberPreKeyRecord {
  keyPair: KyberKeyPair;
  signature: Uint8Array;
  lastResort: boolean;
  createdAt: number;
  replacedAt?: number;
}

/** An identity key seen for one device of another user (or of one's own account). */
export interface IdentityRecord {
  key: Uint8Array;
  /** When this key was first accepted (on first use, or by `trustIdentity`). */
  trustedAt: number;
}

/** A changed identity key that is waiting for the app's `trustIdentity`. */
export interface PendingIdentityRecord {
  key: Uint8Array;
  seenAt: number;
}

/** Every table and the records it holds. Keys are strings; see `client/store/keys.ts` for their shapes. */
export interface Tables {
  /** `account`, `identity`, `keyState`: see {@link AccountRecord}, {@link LocalIdentityRecord}, {@link KeyStateRecord}. */
  meta: AccountRecord | LocalIdentityRecord | KeyStateRecord;
  /** Serialized session records, by address. */
  sessions: Uint8Array;
  identities: IdentityRecord;
  pendingIdentities: PendingIdentityRecord;
  preKeys: PreKeyRecord;
  signedPreKeys: SignedPreKeyRecord;
  kyberPreKeys: KyberPreKeyRecord;
  /** Uses of last-resort Kyber prekeys (a replayed handshake is refused). */
  kyberUses: number;
  /** Serialized sender-key records, by sender address and distribution id. */
  senderKeys: Uint8Array;
  /** Message history, by conversation and time. */
  messages: MessageRecord;
  /** (from, fromDevice, id) → key in `messages`: delivery dedupe and receipt lookup. */
  messageIndex: string;
  /** Frames waiting to go out (sends and read receipts), in order. */
  outbox: OutboxItem;
  /** Envelopes held back until their sender's changed identity is trusted. */
  quarantine: Envelope;
  /** Groups and channels this device is in, by group id (cached server state, kept current by group events). */
  groups: GroupRecord;
  /** This device's sender key per group (distribution id, who has it, whether to rotate), by group id. */
  groupSenderKeys: OwnSenderKeyRecord;
  /** Group messages, channel posts and membership changes, by group and group sequence (also the delivery dedupe). */
  groupHistory: GroupHistoryRecord;
  /** Fan-out-on-read groups and channels: the last group sequence read from the log, by group id. */
  groupCursors: number;
  /** Group sends, channel posts and group read receipts waiting for the server, in order. */
  groupOutbox: GroupOutboxItem;
  /** Channel keys (32 bytes, AES-256-GCM), by channel id: from `createChannel` or an invite link, never sent to the server. */
  channelKeys: Uint8Array;
  /** Identity keys of channel posters fetched from the key directory, by address (`userId.deviceId`). */
  signerKeys: Uint8Array;
}

export type TableName = keyof Tables;

/** A record and its key. */
export interface Entry<T> {
  key: string;
  value: T;
}

/** Keys to read from a table: all of them in key order unless narrowed. Bounds are exclusive. */
export interface KeyRange {
  /** Only keys starting with this. */
  prefix?: string;
  /** Only keys greater than this. */
  after?: string;
  /** Only keys smaller than this. */
  before?: string;
  /** At most this many entries. */
  limit?: number;
  /** Largest keys first. */
  reverse?: boolean;
}

/** Put `value` at `key` of `table`, or delete the key when `value` is undefined. */
export type WriteOp = {
  [T in TableName]: { table: T; key: string; value: Tables[T] | undefined };
}[TableName];

/**
 * Storage for one device. Records are plain data (objects, arrays, strings, numbers, booleans,
 * `Uint8Array`); a store returns copies, never objects a later write changes.
 */
export interface RelayStore {
  /**
   * The record at `key`, or undefined.
   * @example
   * const account = await store.get("meta", "account");
   */
  get<T extends TableName>(table: T, key: string): Promise<Tables[T] | undefined>;
  /**
   * Records of `table` within `range`, in key order (code-unit order of the keys).
   * @example
   * const newest = await store.list("messages", { prefix: `${bobId}|`, reverse: true, limit: 20 });
   */
  list<T extends TableName>(table: T, range?: KeyRange): Promise<Entry<Tables[T]>[]>;
  /**
   * Applies every op, atomically: all of them or none.
   * @example
   * await store.write([put("messages", key, record), put("outbox", outboxKey, undefined)]);
   */
  write(ops: readonly WriteOp[]): Promise<void>;
  /**
   * Deletes everything (log out).
   * @example
   * await store.clear();
   */
  clear(): Promise<void>;
  /**
   * Releases the store's resources; no call may follow.
   * @example
   * await relay.close();
   * await store.close();
   */
  close(): Promise<void>;
}

/**
 * A put (or delete, with `undefined`) for a {@link RelayStore.write} batch.
 * @example
 * await store.write([put("sessions", key, record), put("preKeys", used, undefined)]);
 */
export function put<T extends TableName>(table: T, key: string, value: Tables[T] | undefined): WriteOp {
  return { table, key, value } as WriteOp;
}
