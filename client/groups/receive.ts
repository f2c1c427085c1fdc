/**
 * Group entries as they arrive, from the inbox (fan-out on write) or the group's log (fan-out on read), one at a time
 * in group order: a membership change updates the local state; a message is decrypted with the sender key of
 * (from, fromDevice, distribution), or, in a channel, its signature checked against the posting device's identity
 * key and opened with the channel key. The outcome is stored in one atomic write with the advanced sender-key chain
 * (and the log cursor), before the inbox is acknowledged; (group, groupSeq) dedupes redeliveries.
 */
import { fromBase64 } from "../../src/protocol/base64";
import type { GroupEventEnvelope, GroupKind, GroupLogEntry, GroupMessage } from "../../src/protocol/groups";
import { SenderKeyError, groupDecrypt } from "../crypto/sender-keys";
import type { Core } from "../core";
import { decodeContent } from "../messages/content";
import { StagedProtocolStore } from "../sessions/staged-store";
import { addressKey, groupHistoryKey } from "../store/keys";
import { put, type WriteOp } from "../store/types";
import { openPost, verifyPost } from "./channel-crypto";
import { StagedSenderKeyStore } from "./staged-sender-keys";
import { applyEventOps } from "./state";
import type { GroupEventRecord, GroupMessageRecord } from "./types";

/** Why a group message could not be read. */
export type GroupMessageErrorReason = "bad-signature" | "no-channel-key" | "no-sender-key" | "undecryptable";

/**
 * A group message or channel post that could not be read; it is skipped (and, from the inbox, acknowledged).
 * A channel post whose signature does not verify is refused with reason `bad-signature`.
 * @example
 * relay.on("error", (e) => e instanceof GroupMessageError && e.reason === "bad-signature" && warn(e.group));
 */
export class GroupMessageError extends Error {
  override name = "GroupMessageError";
  constructor(
    readonly reason: GroupMessageErrorReason,
    readonly group: string,
    readonly groupSeq: number,
    readonly from: string,
    readonly fromDevice: number,
    readonly id: string,
    override readonly cause?: unknown,
  ) {
    super(`group ${group} message ${groupSeq} (${id} from ${from}.${fromDevice}): ${reason}${cause ? `: ${(cause as Error)?.message ?? String(cause)}` : ""}`);
  }
}

/** What reading one entry needs besides the store. */
export interface EntryContext {
  /** The group's kind: channel posts are sealed and signed, group messages are sender-key messages. */
  kind: GroupKind;
  /** Channels: this device's channel key, if it has one. */
  channelKey?: Uint8Array;
  /** Channels: identity keys of the posting devices by `userId.deviceId` (undefined: the device is unknown). */
  signers?: ReadonlyMap<string, Uint8Array | undefined>;
  /** Written with the entry's outcome, in the same batch (the log cursor). */
  extraOps?: WriteOp[];
  /** Log reads: leave a message whose sender key has not arrived yet unread and answer `missing-key`. */
  holdMissingKey?: boolean;
}

/** What became of one entry. */
export type EntryOutcome = "stored" | "duplicate" | "skipped" | "missing-key";

/**
 * Reads one group entry and stores the outcome; call inside `core.lane`.
 * @example
 * await core.lane.run(() => applyGroupEntry(core, envelope, { kind: "group" }));
 */
export async function applyGroupEntry(core: Core, entry: GroupLogEntry, context: EntryContext): Promise<EntryOutcome> {
  const key = groupHistoryKey(entry.group, entry.groupSeq);
  const extraOps = context.extraOps ?? [];
  if ((await core.store.get("groupHistory", key)) !== undefined) {
    await core.store.write(extraOps);
    return "duplicate";
  }
  if (entry.kind === "group_event") return applyEvent(core, entry, key, extraOps);
  if (entry.from === core.userId && entry.fromDevice === core.deviceId && context.kind !== "channel") {
    // Our own sender-key message (its chain key is spent here): the send path records it on `sent`.
    await core.store.write(extraOps);
    return "duplicate";
  }
  const staged = new StagedProtocolStore(core.store, core.local, core.now);
  let record: GroupMessageRecord;
  try {
    const plaintext = context.kind === "channel" ? await openChannelPost(entry, context) : await openSenderKeyMessage(entry, staged);
    const content = decodeContent(plaintext);
    if (content.to !== entry.group) throw new GroupMessageError("undecryptable", entry.group, entry.groupSeq, entry.from, entry.fromDevice, entry.id, new Error("sealed for another group"));
    record = {
      kind: "message",
      group: entry.group,
      groupSeq: entry.groupSeq,
      from: entry.from,
      fromDevice: entry.fromDevice,
      id: entry.id,
      ts: entry.ts,
      sentAt: content.sentAt,
      body: content.body,
      direction: entry.from === core.userId ? "outgoing" : "incoming",
      ...(context.kind === "channel" && { verified: true }),
    };
  } catch (error) {
    const failure =
      error instanceof GroupMessageError
        ? error
        : new GroupMessageError(isMissingKey(error) ? "no-sender-key" : "undecryptable", entry.group, entry.groupSeq, entry.from, entry.fromDevice, entry.id, error);
    if (failure.reason === "no-sender-key" && context.holdMissingKey) return "missing-key";
    await core.store.write([...extraOps, put("groupHistory", key, { kind: "skipped", group: entry.group, groupSeq: entry.groupSeq, reason: failure.reason })]);
    core.events.emit("error", failure);
    return "skipped";
  }
  await core.store.write([...staged.writes(), put("groupHistory", key, record), ...extraOps]);
  core.events.emit("groupMessage", { ...record, ...("text" in record.body && { text: record.body.text }) });
  return "stored";
}

function isMissingKey(error: unknown): boolean {
  return error instanceof SenderKeyError && error.code === "no-sender-key-state";
}

async function applyEvent(core: Core, entry: GroupEventEnvelope, key: string, extraOps: WriteOp[]): Promise<EntryOutcome> {
  const record: GroupEventRecord = { kind: "event", group: entry.group, groupSeq: entry.groupSeq, epoch: entry.epoch, ts: entry.ts, event: entry.event };
  await core.store.write([...(await applyEventOps(core.store, core.userId, entry)), put("groupHistory", key, record), ...extraOps]);
  core.events.emit("groupEvent", { group: entry.group, groupSeq: entry.groupSeq, epoch: entry.epoch, ts: entry.ts, event: entry.event });
  return "stored";
}

function openSenderKeyMessage(entry: GroupMessage, staged: StagedProtocolStore): Promise<Uint8Array> {
  return groupDecrypt({ userId: entry.from, deviceId: entry.fromDevice }, new StagedSenderKeyStore(staged), fromBase64(entry.body));
}

async function openChannelPost(entry: GroupMessage, context: EntryContext): Promise<Uint8Array> {
  const fail = (reason: GroupMessageErrorReason, cause?: unknown) => new GroupMessageError(reason, entry.group, entry.groupSeq, entry.from, entry.fromDevice, entry.id, cause);
  const signer = context.signers?.get(addressKey(entry.from, entry.fromDevice));
  const sealed = fromBase64(entry.body);
  if (!signer || entry.signature === undefined || !verifyPost(signer, entry, sealed, fromBase64(entry.signature))) throw fail("bad-signature");
  if (!context.channelKey) throw fail("no-channel-key");
  try {
    return await openPost(context.channelKey, entry.group, sealed);
  } catch (error) {
    throw fail("undecryptable", error);
  }
}
