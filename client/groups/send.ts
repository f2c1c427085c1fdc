/**
 * The group outbox: `sendToGroup`, `post` and `markGroupRead` are stored first and go out in order whenever the
 * connection is open, each retried with its SAME client id until the server answers `sent`. Before a group message
 * is encrypted, our sender key is distributed to the members that lack it (and acknowledged); a `stale_epoch`
 * refusal refreshes the group, rotates the key if a member is gone, distributes it and retries with the same id.
 * Channel posts are sealed with the channel key and signed; a stale epoch only changes the epoch they name.
 */
import { toBase64 } from "../../src/protocol/base64";
import type { GroupSendFrame } from "../../src/protocol/groups";
import { groupEncrypt } from "../crypto/sender-keys";
import type { Core } from "../core";
import { encodeContent } from "../messages/content";
import { newMessageId } from "../messages/ids";
import { outboxKey, outboxOrder } from "../messages/outbox";
import type { MessageBody } from "../messages/types";
import { StagedProtocolStore } from "../sessions/staged-store";
import { groupHistoryKey } from "../store/keys";
import { put, type WriteOp } from "../store/types";
import { DrainLoop } from "../util/drain-loop";
import { OrderClock } from "../util/order-clock";
import { sealPost, signPost } from "./channel-crypto";
import { distributeSenderKey } from "./distribution";
import { StagedSenderKeyStore } from "./staged-sender-keys";
import { loadGroup, staleEpochOps } from "./state";
import type { GroupMessageRecord, GroupOutboxRead, GroupOutboxSend, GroupRecord } from "./types";

/** Errors after which a group send can never succeed: it is reported as failed and dropped. */
const PERMANENT = new Set(["not_found", "bad_request", "too_large", "forbidden", "unknown_frame", "invalid_signature"]);
/** Stale-epoch refusals in a row before a send waits for the next connection. */
const MAX_EPOCH_RETRIES = 5;

/**
 * @example
 * const outbox = new GroupOutbox(core, (id) => refresh(id));
 * const id = await outbox.enqueueSend(groupId, { text: "hi" });
 */
export class GroupOutbox extends DrainLoop {
  private clock: OrderClock | undefined;

  /** `refresh` fetches a group's state from the server and stores it (undefined: not a member). */
  constructor(
    private readonly core: Core,
    private readonly refresh: (groupId: string) => Promise<GroupRecord | undefined>,
  ) {
    super((error) => core.events.emit("error", error));
  }

  private async nextKey(id: string): Promise<string> {
    this.clock ??= new OrderClock(outboxOrder((await this.core.store.list("groupOutbox", { reverse: true, limit: 1 }))[0]?.key));
    return outboxKey(this.clock.next(this.core.now()), id);
  }

  /**
   * Stores a group message (or channel post) for sending; returns its client id.
   * @example
   * const id = await outbox.enqueueSend(groupId, { text: "hi" });
   */
  async enqueueSend(group: string, body: MessageBody): Promise<string> {
    const id = newMessageId();
    const item: GroupOutboxSend = { kind: "send", id, group, body, sentAt: this.core.now(), attempts: 0 };
    await this.core.store.write([put("groupOutbox", await this.nextKey(id), item)]);
    this.kick();
    return id;
  }

  /**
   * Stores a `group_read` for sending.
   * @example
   * await outbox.enqueueRead(groupId, [12, 13]);
   */
  async enqueueRead(group: string, seqs: number[]): Promise<void> {
    const id = newMessageId();
    const item: GroupOutboxRead = { kind: "read", id, group, seqs };
    await this.core.store.write([put("groupOutbox", await this.nextKey(id), item)]);
    this.kick();
  }

  protected async drain(): Promise<void> {
    while (!this.paused && this.core.connection.isOpen) {
      const next = (await this.core.store.list("groupOutbox", { limit: 1 }))[0];
      if (!next) return;
      let ok: boolean;
      try {
        ok = next.value.kind === "send" ? await this.processSend(next.key, next.value) : await this.processRead(next.key, next.value);
      } catch (error) {
        this.core.events.emit("error", error);
        await delay(this.core.tuning.retryDelayMs);
        ok = true;
      }
      if (!ok) return;
    }
  }

  /** One attempt at a send; false: stop draining for now. */
  private async processSend(key: string, item: GroupOutboxSend): Promise<boolean> {
    const core = this.core;
    let group = await loadGroup(core.store, item.group);
    if (!group || group.stale) group = (await this.refresh(item.group)) ?? group;
    if (!group || group.left) return this.fail(key, item, "not a member of this group");
    if (!item.frame) {
      if (group.kind !== "channel" && (await distributeSenderKey(core, group)) === "closed") return false;
      const frame = group.kind === "channel" ? await this.sealedPost(group, item) : await this.senderKeyMessage(group, item, key);
      if (!frame) return this.fail(key, item, "no channel key on this device");
      item = { ...item, frame };
      if (group.kind === "channel") await core.store.write([put("groupOutbox", key, item)]);
    }
    const answer = await this.core.connection.requestWhileOpen(item.frame!);
    if (!answer) return false;
    if (answer.type === "sent") {
      await this.sent(key, item, answer.groupSeq, answer.ts);
      return true;
    }
    if (answer.code === "stale_epoch" && answer.group) {
      if (item.attempts >= MAX_EPOCH_RETRIES) {
        this.paused = true;
        core.events.emit("error", new Error(`group send ${item.id}: epoch still stale after ${item.attempts} tries; retrying on the next connection`));
        await core.store.write([put("groupOutbox", key, { ...item, attempts: 0 })]);
        return false;
      }
      const current = answer.group;
      const next: GroupOutboxSend = { ...item, attempts: item.attempts + 1 };
      if (group.kind === "channel") next.frame = { ...item.frame!, epoch: current.epoch };
      else delete next.frame; // encrypt again (after rotating and distributing if needed), same id
      await core.lane.run(async () => core.store.write([...(await staleEpochOps(core.store, core.userId, current)), put("groupOutbox", key, next)]));
      return true;
    }
    if (PERMANENT.has(answer.code)) return this.fail(key, item, `${answer.code}: ${answer.message}`);
    await delay(core.tuning.retryDelayMs);
    return true;
  }

  /** Encrypts with our current sender key; the frame is stored with the advanced chain in one batch. */
  private senderKeyMessage(group: GroupRecord, item: GroupOutboxSend, key: string): Promise<GroupSendFrame> {
    const core = this.core;
    return core.lane.run(async () => {
      const own = await core.store.get("groupSenderKeys", group.groupId);
      if (!own) throw new Error(`no sender key for group ${group.groupId}`);
      const staged = new StagedProtocolStore(core.store, core.local, core.now);
      const plaintext = encodeContent({ body: item.body, sentAt: item.sentAt, to: group.groupId });
      const body = await groupEncrypt({ userId: core.userId, deviceId: core.deviceId }, own.distributionId, new StagedSenderKeyStore(staged), plaintext);
      const frame: GroupSendFrame = { type: "group_send", id: item.id, group: group.groupId, epoch: group.epoch, body: toBase64(body) };
      await core.store.write([...staged.writes(), put("groupOutbox", key, { ...item, frame })]);
      return frame;
    });
  }

  /** Seals and signs a channel post (undefined: this device has no key for the channel). */
  private async sealedPost(group: GroupRecord, item: GroupOutboxSend): Promise<GroupSendFrame | undefined> {
    const channelKey = await this.core.store.get("channelKeys", group.groupId);
    if (!channelKey) return undefined;
    const sealed = await sealPost(channelKey, group.groupId, encodeContent({ body: item.body, sentAt: item.sentAt, to: group.groupId }));
    const signature = signPost(this.core.local.identity.privateKey, { group: group.groupId, from: this.core.userId, fromDevice: this.core.deviceId, id: item.id }, sealed);
    return { type: "group_send", id: item.id, group: group.groupId, epoch: group.epoch, body: toBase64(sealed), signature: toBase64(signature) };
  }

  private async processRead(key: string, item: GroupOutboxRead): Promise<boolean> {
    const answer = await this.core.connection.requestWhileOpen({ type: "group_read", id: item.id, group: item.group, seqs: item.seqs });
    if (!answer) return false;
    if (answer.type === "sent" || PERMANENT.has(answer.code)) {
      await this.core.store.write([put("groupOutbox", key, undefined)]);
      return true;
    }
    await delay(this.core.tuning.retryDelayMs);
    return true;
  }

  /** Stored by the server: the message joins the history at its group sequence. */
  private async sent(key: string, item: GroupOutboxSend, groupSeq: number | undefined, ts: number): Promise<void> {
    const ops: WriteOp[] = [put("groupOutbox", key, undefined)];
    if (groupSeq !== undefined) {
      const record: GroupMessageRecord = {
        kind: "message",
        group: item.group,
        groupSeq,
        from: this.core.userId,
        fromDevice: this.core.deviceId,
        id: item.id,
        ts,
        sentAt: item.sentAt,
        body: item.body,
        direction: "outgoing",
        ...(item.frame?.signature !== undefined && { verified: true }),
      };
      ops.push(put("groupHistory", groupHistoryKey(item.group, groupSeq), record));
    }
    await this.core.store.write(ops);
    this.core.events.emit("groupStatus", { group: item.group, id: item.id, status: "sent", ...(groupSeq !== undefined && { groupSeq }) });
  }

  private async fail(key: string, item: GroupOutboxSend, why: string): Promise<boolean> {
    await this.core.store.write([put("groupOutbox", key, undefined)]);
    this.core.events.emit("error", new Error(`group send ${item.id} to ${item.group} failed: ${why}`));
    this.core.events.emit("groupStatus", { group: item.group, id: item.id, status: "failed" });
    return true;
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

