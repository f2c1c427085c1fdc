/**
 * UserDO: one per user (`idFromName(userId)`). Holds the user's devices, each device's ordered inbox,
 * one-time prekeys and settings in SQLite, and the user's live sockets through the Hibernation API.
 *
 * A send from one of this user's sockets is stored in the recipient's UserDO (and in this one for the
 * sender's other devices) before the sender gets `sent`: store, then acknowledge.
 */
import { DurableObject } from "cloudflare:workers";
import type { DeviceMismatch, ErrorCode } from "../src/protocol/errors";
import {
  CLIENT_FRAME_TYPES,
  CLOSE_CODES,
  PING_FRAME,
  PONG_FRAME,
  clientFrameSchema,
  type MessageRef,
  type OutgoingMessage,
  type ReadFrame,
  type SendFrame,
  type ServerFrame,
} from "../src/protocol/frames";
import type { GroupEpoch, GroupMembership, GroupReadFrame, GroupReceiptCounts, GroupSendFrame } from "../src/protocol/groups";
import type { PreKey, PreKeyCounts, Settings, SignedPreKey } from "../src/protocol/http";
import { LIMITS } from "../src/protocol/limits";
import { logger, type Logger } from "../src/log";
import { deviceMismatch } from "./device-check";
import type { GroupDelivery } from "./group-fanout";
import { GROUP_ORIGIN_PREFIX, groupOrigin, Inbox, type ReceiptDelivery, type StoredEnvelope } from "./inbox";
import { LiveReceipts, type LiveTarget } from "./live-receipts";
import { PreKeyPool, type ClaimedPreKeys } from "./prekeys";
import { RECEIPT_RIDE_WAIT_MS, ReceiptOutbox } from "./receipt-outbox";
import { RecipientQueues } from "./recipient-queues";
import { ensureSchema } from "./schema";
import { StubCache } from "./stub-cache";
import { deviceTag, saveSocketState, socketState, type SocketState } from "./socket-state";
import { UserGroups, type GroupRef } from "./user-groups";
import { USER_SCHEMA } from "./user-schema";

/** One send addressed to this user, as the sender's UserDO forwards it. */
export interface InboundMessage {
  from: string;
  fromDevice: number;
  id: string;
  messages: OutgoingMessage[];
}

export type DeliverResult =
  | { ok: true; ts: number }
  | { ok: false; code: "mismatched_devices"; mismatch: DeviceMismatch }
  | { ok: false; code: "not_found" };

/** The answer to a `deliver` call: one result per send, and the receipts this user owes the caller, if any. */
export interface DeliverAnswer {
  results: DeliverResult[];
  receipts?: ReceiptDelivery[];
}

/** Stubs of other users' objects kept per object (the people this user talks to). */
const STUB_CACHE_SIZE = 256;

/** Headers the edge Worker sets on a connect request after verifying the token. */
export const CONNECT_HEADERS = { user: "x-relay-user", device: "x-relay-device", family: "x-relay-family" } as const;

export class UserDO extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  /** What this object reads from SQLite, read when first needed: a wake-up for a live notice reads nothing. */
  private stored?: { inbox: Inbox; userId: string | null; readReceipts: boolean };
  private readonly prekeys: PreKeyPool;
  private readonly log: Logger;
  private readonly outgoing: RecipientQueues;
  private readonly receipts: ReceiptOutbox;
  private readonly groups: UserGroups;
  private readonly users = new StubCache(this.env.USER, STUB_CACHE_SIZE);
  private readonly groupObjects = new StubCache(this.env.GROUP, STUB_CACHE_SIZE);
  /** Receipts that rode `deliver` answers, pushed to this user's online devices until each acknowledges them. */
  private readonly liveReceipts = new LiveReceipts();
  /**
   * Per device, an acknowledgement not yet written because the receipts it owes would wait for their senders'
   * next calls anyway: written with the next event that writes (such a call), or by the alarm within
   * `RECEIPT_RIDE_WAIT_MS`. Lost with the object, it only means those envelopes are delivered again.
   */
  private readonly heldAcks = new Map<number, number>();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.prekeys = new PreKeyPool(this.sql);
    this.log = logger(env.LOG_LEVEL);
    this.outgoing = new RecipientQueues((userId, items) => this.deliverTo(userId, items));
    this.receipts = new ReceiptOutbox(
      this.sql,
      ctx.storage,
      (target, receipts) => this.handOverReceipts(target, receipts),
      (error) => this.log.info("receipts", { outcome: "retry_later", error: String(error) }),
    );
    this.groups = new UserGroups(this.sql);
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(PING_FRAME, PONG_FRAME));
  }

  /**
   * The schema, the devices and the user's settings, read on first use, and the acknowledgements an earlier life
   * of this object held. Every path that touches SQLite comes here first.
   */
  private load(): NonNullable<UserDO["stored"]> {
    if (!this.stored) {
      ensureSchema(this.sql, USER_SCHEMA);
      this.stored = { inbox: new Inbox(this.sql), userId: this.meta("user_id"), readReceipts: this.meta("read_receipts") !== "0" };
      this.recoverHeldAcks();
    }
    return this.stored;
  }

  private get inbox(): Inbox {
    return this.load().inbox;
  }

  private get userId(): string | null {
    return this.load().userId;
  }

  private get readReceipts(): boolean {
    return this.load().readReceipts;
  }

  // ---- Directory changes, from the edge Worker ----

  /**
   * Adds a device (or replaces one with the same id) with its one-time prekeys.
   * `replaceAll`: a re-registration of the account; every other device is removed.
   */
  async registerDevice(args: {
    userId: string;
    deviceId: number;
    registrationId: number;
    family: string;
    preKeys: PreKey[];
    kyberPreKeys: SignedPreKey[];
    replaceAll?: boolean;
  }): Promise<void> {
    this.setUserId(args.userId);
    if (args.replaceAll) {
      for (const deviceId of [...this.inbox.devices.keys()]) this.dropDevice(deviceId, "account re-registered");
    }
    this.closeSockets(args.deviceId, CLOSE_CODES.unauthorized, "device re-registered");
    this.heldAcks.delete(args.deviceId);
    this.inbox.putDevice(args.deviceId, args.registrationId, args.family);
    this.prekeys.removeDevice(args.deviceId);
    this.prekeys.replace(args.deviceId, args.preKeys, args.kyberPreKeys);
  }

  /** Removes a device: its inbox and prekeys are deleted and its sockets closed. */
  async removeDevice(deviceId: number): Promise<void> {
    this.dropDevice(deviceId, "device removed");
  }

  /** Replaces a device's token family (revocation) and closes its sockets. */
  async revokeFamily(deviceId: number, family: string): Promise<void> {
    this.inbox.setFamily(deviceId, family);
    this.closeSockets(deviceId, CLOSE_CODES.unauthorized, "session revoked");
  }

  async replacePreKeys(deviceId: number, preKeys?: PreKey[], kyberPreKeys?: SignedPreKey[]): Promise<void> {
    if (!this.inbox.devices.has(deviceId)) throw new Error(`no device ${deviceId}`);
    this.prekeys.replace(deviceId, preKeys, kyberPreKeys);
  }

  /** One one-time EC and one one-time Kyber prekey per device, each removed as it is handed out. */
  async claimPreKeys(deviceIds: number[]): Promise<Record<number, ClaimedPreKeys>> {
    const claimed: Record<number, ClaimedPreKeys> = {};
    for (const deviceId of deviceIds) {
      if (this.inbox.devices.has(deviceId)) claimed[deviceId] = this.prekeys.claim(deviceId);
    }
    return claimed;
  }

  async preKeyCounts(deviceId: number): Promise<PreKeyCounts> {
    this.load();
    return this.prekeys.counts(deviceId);
  }

  async settings(): Promise<Settings> {
    return { readReceipts: this.readReceipts };
  }

  async updateSettings(changes: Partial<Settings>): Promise<Settings> {
    if (changes.readReceipts !== undefined) {
      this.load().readReceipts = changes.readReceipts;
      this.setMeta("read_receipts", changes.readReceipts ? "1" : "0");
    }
    return this.settings();
  }

  // ---- Between UserDOs ----

  /**
   * Stores sends addressed to this user, each exactly once; retries get the first timestamp back. All items come
   * from one sender's object, whose owed receipts ride back in the answer; `confirmed`: ids of receipts that
   * earlier answers carried and every device of the sender now has.
   */
  async deliver(items: InboundMessage[], confirmed: readonly string[] = []): Promise<DeliverAnswer> {
    const me = this.userId;
    const sender = items[0]?.from;
    this.writeHeldAcks();
    const receipts = sender !== undefined && sender !== me ? this.receipts.ride(sender, confirmed) : undefined;
    const answer = (results: DeliverResult[]): DeliverAnswer => (receipts ? { results, receipts } : { results });
    if (me === null || this.inbox.devices.size === 0) return answer(items.map(() => ({ ok: false, code: "not_found" })));
    const ts = Date.now();
    const fresh = new FreshEnvelopes();
    this.receipts.settle();
    const results = items.map((item): DeliverResult => {
      const senderDevice = item.from === me ? item.fromDevice : undefined;
      const mismatch = deviceMismatch(me, this.inbox.devices, item.messages, senderDevice);
      if (mismatch) {
        // A retry of a send accepted before the device list changed is still acknowledged.
        const earlier = this.inbox.acceptedAt(item.from, item.fromDevice, item.id);
        return earlier === undefined ? { ok: false, code: "mismatched_devices", mismatch } : { ok: true, ts: earlier };
      }
      const earlier = this.inbox.accept(item.from, item.fromDevice, item.id, ts);
      if (earlier !== undefined) return { ok: true, ts: earlier };
      fresh.add(this.inbox.storeMessages(item.from, item.fromDevice, item.id, ts, item.messages, item.from !== me));
      return { ok: true, ts };
    });
    fresh.pumpAll((device, envelopes) => this.pump(device, envelopes));
    if (this.heldAcks.size === 0) this.receipts.keepAlarmAhead();
    return answer(results);
  }

  /** The device mismatch a send would meet here, without storing anything. */
  async checkDevices(messages: OutgoingMessage[], senderDevice?: number): Promise<DeviceMismatch | null> {
    if (this.userId === null || this.inbox.devices.size === 0) return null; // unknown user: the send says not_found
    return deviceMismatch(this.userId, this.inbox.devices, messages, senderDevice);
  }

  /**
   * Stores receipts for every device of this user (at least once: clients treat a repeated receipt as a no-op;
   * a receipt that rode a `deliver` answer and that every device has is dropped here while this object lives).
   * Read receipts are dropped when this user turned them off.
   */
  async storeReceipts(receipts: ReceiptDelivery[]): Promise<{ dropped: boolean }[]> {
    const fresh = new FreshEnvelopes();
    this.writeHeldAcks();
    this.receipts.settle();
    const results = receipts.map((receipt) => {
      if (receipt.receipt === "read" && !this.readReceipts) return { dropped: true };
      if (this.liveReceipts.has(receipt.from, receipt.id)) return { dropped: false };
      fresh.add(this.inbox.storeReceipt(receipt));
      if (receipt.receipt === "delivered") this.liveReceipts.stored(receipt.from, [receipt.id]);
      return { dropped: false };
    });
    fresh.pumpAll((device, envelopes) => this.pump(device, envelopes));
    return results;
  }

  // ---- From GroupDOs ----

  /**
   * Stores a group's entries for this user's devices, in group order, each (group, sequence) once however often
   * the group hands it over; keeps the user's list of groups as memberships change.
   */
  async deliverGroup(group: GroupRef, items: GroupDelivery[]): Promise<void> {
    const me = this.userId;
    if (me === null) return; // no such user: nothing to store, and nothing to retry
    const origin = groupOrigin(group.groupId);
    const ts = Date.now();
    const fresh = new FreshEnvelopes();
    let watch = false;
    this.writeHeldAcks();
    this.receipts.settle();
    for (const item of items) {
      if (item.groupSeq === 0) {
        if (item.membership !== undefined) this.groups.set(group, item.membership);
        if (item.membership === true) watch = true;
        continue;
      }
      if (this.inbox.accept(origin, 0, String(item.groupSeq), ts) !== undefined) continue;
      if (item.membership !== undefined) this.groups.set(group, item.membership);
      if (item.membership === true && group.fanout === "read") watch = true;
      if (item.envelope === undefined) continue;
      const receiptFor = item.kind === "message" && !item.sender ? { group: group.groupId, seq: item.groupSeq } : undefined;
      fresh.add(this.inbox.storeGroupEntry(item.envelope, item.sender?.deviceId, receiptFor));
    }
    fresh.pumpAll((device, envelopes) => this.pump(device, envelopes));
    // Joined a group read by cursor while online: be told of its new entries from now on.
    for (const ws of watch ? this.ctx.getWebSockets() : []) void this.watchGroup(ws, group.groupId);
  }

  /** A fan-out-on-read group has entries up to `upTo`: tells the live sockets. False when none is open. */
  async groupNotice(groupId: string, upTo: number, entries?: string[]): Promise<boolean> {
    const sockets = this.ctx.getWebSockets();
    const carried = entries === undefined ? "" : `,"entries":[${entries.join(",")}]`;
    const frame = `{"type":"group_notice","group":${JSON.stringify(groupId)},"upTo":${upTo}${carried}}`;
    for (const ws of sockets) sendText(ws, frame);
    return sockets.length > 0;
  }

  /** New receipt counts of this user's group messages, for the live sockets. */
  async groupReceipts(groupId: string, counts: GroupReceiptCounts[]): Promise<void> {
    for (const ws of this.ctx.getWebSockets()) send(ws, { type: "group_receipts", group: groupId, counts });
  }

  async groupList(): Promise<GroupMembership[]> {
    this.load();
    return this.groups.list();
  }

  // ---- Sockets ----

  override async fetch(request: Request): Promise<Response> {
    const userId = request.headers.get(CONNECT_HEADERS.user) ?? "";
    const deviceId = Number(request.headers.get(CONNECT_HEADERS.device));
    const family = request.headers.get(CONNECT_HEADERS.family) ?? "";
    const protocol = request.headers.get("sec-websocket-protocol") ? { "Sec-WebSocket-Protocol": "relay.v1" } : undefined;
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    if (userId !== this.userId || this.inbox.devices.get(deviceId)?.family !== family) {
      server.accept();
      rejectSocket(server, "device removed or session revoked");
      this.log.info("connect", { outcome: "unauthorized" });
      return new Response(null, { status: 101, webSocket: client, headers: protocol });
    }
    this.closeSockets(deviceId, CLOSE_CODES.replaced, "replaced by a newer connection");
    this.writeHeldAcks();
    this.ctx.acceptWebSocket(server, [deviceTag(deviceId)]);
    const acked = this.inbox.ackedUpTo(deviceId);
    saveSocketState(server, { device: deviceId, sent: acked, acked });
    send(server, { type: "ready", userId, deviceId, pending: this.inbox.pendingCount(deviceId) });
    this.pump(deviceId);
    this.inbox.forgetAcceptedBefore(Date.now() - LIMITS.dedupeWindowMs);
    void this.watchGroups(server);
    this.log.info("connect", { outcome: "ok", device: deviceId });
    return new Response(null, { status: 101, webSocket: client, headers: protocol });
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    const started = Date.now();
    const state = socketState(ws);
    if (!state || !this.userId) return;
    const frameType = await this.handleFrame(ws, state, message);
    if (this.log.enabled("debug")) this.log.debug("frame", { type: frameType, ms: Date.now() - started });
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    try {
      ws.close(code === 1005 ? 1000 : code, reason);
    } catch {
      // already closed
    }
  }

  override async webSocketError(): Promise<void> {}

  /** Retries receipts that could not be handed to their recipients. */
  override async alarm(): Promise<void> {
    this.load();
    await this.receipts.retry(() => this.writeHeldAcks());
  }

  // ---- Frames ----

  private async handleFrame(ws: WebSocket, state: SocketState, message: string | ArrayBuffer): Promise<string> {
    if (typeof message !== "string") return this.fail(ws, "bad_request", "frames are JSON text");
    if (message.length > LIMITS.maxFrameBytes) {
      return this.fail(ws, "too_large", `frame exceeds ${LIMITS.maxFrameBytes} bytes`);
    }
    let json: unknown;
    try {
      json = JSON.parse(message);
    } catch {
      return this.fail(ws, "bad_request", "frame is not valid JSON");
    }
    const type = (json as { type?: unknown } | null)?.type;
    const id = typeof (json as { id?: unknown }).id === "string" ? (json as { id: string }).id : undefined;
    if (!(CLIENT_FRAME_TYPES as readonly unknown[]).includes(type)) {
      return this.fail(ws, "unknown_frame", `unknown frame type ${JSON.stringify(type ?? null).slice(0, 40)}`, id);
    }
    const parsed = clientFrameSchema.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return this.fail(ws, "bad_request", `${issue?.path.join(".") || "frame"}: ${issue?.message}`, id);
    }
    const frame = parsed.data;
    switch (frame.type) {
      case "send":
        await this.handleSend(ws, state, frame);
        break;
      case "ack":
        this.handleAck(ws, state, frame.upTo);
        break;
      case "receipts_ack":
        this.liveReceipts.acknowledged(state.device, frame.batches);
        break;
      case "read":
        await this.handleRead(ws, state, frame);
        break;
      case "group_send":
        await this.handleGroupSend(ws, state, frame);
        break;
      case "group_read":
        await this.handleGroupRead(ws, state, frame);
        break;
    }
    return frame.type;
  }

  private async handleSend(ws: WebSocket, state: SocketState, frame: Required<SendFrame>): Promise<void> {
    const me = this.userId!;
    const duplicate = findDuplicateDevice(frame.messages) ?? findDuplicateDevice(frame.sync);
    if (duplicate !== undefined) {
      this.fail(ws, "bad_request", `device ${duplicate} is addressed twice`, frame.id);
      return;
    }
    const item: InboundMessage = { from: me, fromDevice: state.device, id: frame.id, messages: frame.messages };
    if (frame.to === me) {
      if (frame.sync.length > 0) {
        this.fail(ws, "bad_request", "a send to your own devices carries them in messages, not sync", frame.id);
        return;
      }
      this.answerSend(ws, frame.id, (await this.deliver([item])).results[0]!);
      return;
    }
    const syncMismatch = deviceMismatch(me, this.inbox.devices, frame.sync, state.device);
    if (syncMismatch) {
      const recipientMismatch = await this.users.call(frame.to, (stub) => stub.checkDevices(frame.messages));
      this.fail(ws, "mismatched_devices", "the send's device lists are not current", frame.id, [
        ...(recipientMismatch ? [recipientMismatch] : []),
        syncMismatch,
      ]);
      return;
    }
    let result: DeliverResult;
    try {
      result = await this.outgoing.deliver(frame.to, item);
    } catch (error) {
      this.log.info("send", { outcome: "recipient_unavailable", error: String(error) });
      this.fail(ws, "internal", "recipient unavailable; retry with the same id", frame.id);
      return;
    }
    if (result.ok && frame.sync.length > 0) this.storeSync(state.device, frame, result.ts);
    this.answerSend(ws, frame.id, result);
  }

  /** Copies for the sender's own other devices, stored after the recipient accepted the send. */
  private storeSync(senderDevice: number, frame: Required<SendFrame>, ts: number): void {
    const me = this.userId!;
    if (this.inbox.accept(me, senderDevice, frame.id, ts) !== undefined) return;
    const current = frame.sync.filter((m) => this.inbox.devices.has(m.device) && m.device !== senderDevice);
    const fresh = new FreshEnvelopes();
    fresh.add(this.inbox.storeMessages(me, senderDevice, frame.id, ts, current, false));
    fresh.pumpAll((device, envelopes) => this.pump(device, envelopes));
  }

  private answerSend(ws: WebSocket, id: string, result: DeliverResult): void {
    if (result.ok) send(ws, { type: "sent", id, ts: result.ts });
    else if (result.code === "not_found") this.fail(ws, "not_found", "unknown recipient", id);
    else this.fail(ws, "mismatched_devices", "the send's device lists are not current", id, [result.mismatch]);
  }

  private handleAck(ws: WebSocket, state: SocketState, upTo: number): void {
    if (upTo <= state.acked) return;
    if (upTo > state.sent) {
      this.fail(ws, "invalid_ack", `ack ${upTo} is beyond the last delivered sequence ${state.sent}`);
      return;
    }
    const after = state.acked;
    state.acked = upTo;
    saveSocketState(ws, state);
    if (this.receiptsWouldWait(state.device, after, upTo)) {
      this.heldAcks.set(state.device, upTo);
      this.receipts.requestAlarmBy(Date.now() + RECEIPT_RIDE_WAIT_MS);
    } else {
      this.heldAcks.delete(state.device); // this acknowledgement covers it
      this.writeAck(state.device, upTo);
    }
    this.pump(state.device);
  }

  /**
   * Whether the envelopes in (`after`, `upTo`] owe receipts, each of which would wait for its sender's next call.
   * (An acknowledgement that owes nothing is written at once: holding it would cost an alarm where there may be
   * no next call.)
   */
  private receiptsWouldWait(device: number, after: number, upTo: number): boolean {
    const senders = this.inbox.sendersBetween(device, after, upTo);
    return senders !== undefined && senders.length > 0 && senders.every((sender) => this.receipts.wouldWait(sender));
  }

  /** Deletes the device's envelopes up to `upTo` and owes their senders delivered receipts. */
  private writeAck(device: number, upTo: number): void {
    this.receipts.settle();
    const owed = this.inbox.acknowledge(device, upTo);
    if (owed.length > 0) this.queueDeliveredReceipts(device, owed);
  }

  /**
   * An acknowledgement held when the object went away left its envelopes in SQLite while the socket, which
   * outlives the object, remembers it: held again, it is written with the next write, or by the alarm.
   */
  private recoverHeldAcks(): void {
    for (const ws of this.ctx.getWebSockets()) {
      const state = socketState(ws);
      if (state && state.acked > this.inbox.ackedUpTo(state.device)) {
        this.heldAcks.set(state.device, Math.max(state.acked, this.heldAcks.get(state.device) ?? 0));
      }
    }
    if (this.heldAcks.size > 0) this.receipts.requestAlarmBy(Date.now() + RECEIPT_RIDE_WAIT_MS);
  }

  /** Writes the acknowledgements held back (see `heldAcks`); call from events that write anyway. */
  private writeHeldAcks(): void {
    if (this.heldAcks.size === 0) return;
    for (const [device, upTo] of this.heldAcks) this.writeAck(device, upTo);
    this.heldAcks.clear();
  }

  private async handleRead(ws: WebSocket, state: SocketState, frame: ReadFrame): Promise<void> {
    if (!this.readReceipts) {
      send(ws, { type: "sent", id: frame.id, ts: Date.now(), dropped: true });
      return;
    }
    const receipt: ReceiptDelivery = {
      id: frame.id,
      receipt: "read",
      from: this.userId!,
      fromDevice: state.device,
      refs: frame.refs,
      ts: Date.now(),
    };
    try {
      const [result] = await this.users.call(frame.to, (stub) => stub.storeReceipts([receipt]));
      send(ws, { type: "sent", id: frame.id, ts: receipt.ts, ...(result?.dropped && { dropped: true }) });
    } catch (error) {
      this.log.info("read", { outcome: "recipient_unavailable", error: String(error) });
      this.fail(ws, "internal", "recipient unavailable; retry with the same id", frame.id);
    }
  }

  private async handleGroupSend(ws: WebSocket, state: SocketState, frame: GroupSendFrame): Promise<void> {
    try {
      const outcome = await this.groupObjects.call(frame.group, (stub) => stub.send({ userId: this.userId!, deviceId: state.device }, frame));
      if (outcome.ok) send(ws, { type: "sent", id: frame.id, ts: outcome.value.ts, groupSeq: outcome.value.groupSeq });
      else this.fail(ws, outcome.code, outcome.message, frame.id, undefined, outcome.group);
    } catch (error) {
      this.log.info("group_send", { outcome: "group_unavailable", error: String(error) });
      this.fail(ws, "internal", "group unavailable; retry with the same id", frame.id);
    }
  }

  private async handleGroupRead(ws: WebSocket, state: SocketState, frame: GroupReadFrame): Promise<void> {
    if (!this.readReceipts) {
      send(ws, { type: "sent", id: frame.id, ts: Date.now(), dropped: true });
      return;
    }
    try {
      const outcome = await this.groupObjects.call(frame.group, (stub) => stub.markRead({ userId: this.userId!, deviceId: state.device }, frame.seqs));
      if (outcome.ok) send(ws, { type: "sent", id: frame.id, ts: Date.now() });
      else this.fail(ws, outcome.code, outcome.message, frame.id);
    } catch (error) {
      this.log.info("group_read", { outcome: "group_unavailable", error: String(error) });
      this.fail(ws, "internal", "group unavailable; retry with the same id", frame.id);
    }
  }

  /** Registers a newly connected device with the user's fan-out-on-read groups and tells it where each log is. */
  private async watchGroups(ws: WebSocket): Promise<void> {
    await Promise.all(this.groups.readByCursor().map((groupId) => this.watchGroup(ws, groupId)));
  }

  private async watchGroup(ws: WebSocket, groupId: string): Promise<void> {
    try {
      const head = await this.groupObjects.call(groupId, (stub) => stub.watch(this.userId!));
      if (head !== null) send(ws, { type: "group_notice", group: groupId, upTo: head });
    } catch (error) {
      this.log.info("group_watch", { outcome: "group_unavailable", error: String(error) });
    }
  }

  /**
   * Sends to another user's object, confirming the receipts it carried earlier that every device of this user now
   * has; the receipts its answer carries back go to this user's devices.
   */
  private async deliverTo(userId: string, items: InboundMessage[]): Promise<DeliverResult[]> {
    const confirmed = this.liveReceipts.takeConfirmable(userId);
    let answer: DeliverAnswer;
    try {
      answer = await this.users.call(userId, (stub) => stub.deliver(items, confirmed));
    } catch (error) {
      this.liveReceipts.putBack(userId, confirmed);
      throw error;
    }
    if (answer.receipts) this.takeRiddenReceipts(userId, answer.receipts);
    return answer.results;
  }

  /**
   * Receipts that rode an answer: pushed live to the devices whose sockets have everything else they were sent
   * (so a tick never overtakes the message it is about), stored for the others. Nothing is written while every
   * device is online; the owing object keeps them until this one confirms them.
   */
  private takeRiddenReceipts(from: string, receipts: ReceiptDelivery[]): void {
    const fresh = receipts.filter((r) => !this.liveReceipts.has(from, r.id));
    if (fresh.length === 0) return;
    const live: LiveTarget[] = [];
    const offline: number[] = [];
    for (const device of this.inbox.devices.keys()) {
      const ws = this.caughtUpSocket(device);
      if (ws) live.push({ ws, device });
      else offline.push(device);
    }
    if (offline.length > 0) {
      const stored = new FreshEnvelopes();
      this.receipts.settle();
      for (const receipt of fresh) stored.add(this.inbox.storeReceipt(receipt, offline));
      stored.pumpAll((device, envelopes) => this.pump(device, envelopes));
    }
    this.liveReceipts.push(from, fresh, live);
  }

  /** The device's open socket, if it has been sent every envelope stored for it. */
  private caughtUpSocket(device: number): WebSocket | undefined {
    for (const ws of this.ctx.getWebSockets(deviceTag(device))) {
      const state = socketState(ws);
      if (state && !this.inbox.hasAfter(device, state.sent)) return ws;
    }
    return undefined;
  }

  /** Delivered receipts go to the sender's UserDO, or, for group messages, to the group (which counts them). */
  private async handOverReceipts(target: string, receipts: ReceiptDelivery[]): Promise<unknown> {
    if (!target.startsWith(GROUP_ORIGIN_PREFIX)) return this.users.call(target, (stub) => stub.storeReceipts(receipts));
    const seqs = receipts.flatMap((r) => r.refs.map((ref) => Number(ref.id)));
    return this.groupObjects.call(target.slice(GROUP_ORIGIN_PREFIX.length), (stub) => stub.recordReceipts(this.userId!, "delivered", seqs));
  }

  // ---- Delivery ----

  /**
   * Pushes stored envelopes to the device's socket, in pages, until its window is full. `fresh`: envelopes
   * just stored for it, in order, sent without reading them back when the socket is caught up.
   */
  private pump(deviceId: number, fresh: StoredEnvelope[] = []): void {
    for (const ws of this.ctx.getWebSockets(deviceTag(deviceId))) {
      const state = socketState(ws);
      if (!state) continue;
      const sentBefore = state.sent;
      const caughtUp = fresh.length > 0 && fresh[0]!.seq === state.sent + 1;
      if (caughtUp && state.sent + fresh.length - state.acked <= LIMITS.deliveryWindow && fitsOnePage(fresh)) {
        if (deliverPage(ws, fresh)) state.sent = fresh[fresh.length - 1]!.seq;
      } else {
        while (state.sent - state.acked < LIMITS.deliveryWindow && this.inbox.hasAfter(deviceId, state.sent)) {
          const room = Math.min(LIMITS.deliveryPageSize, LIMITS.deliveryWindow - (state.sent - state.acked));
          const page = this.inbox.page(deviceId, state.sent, room, LIMITS.deliveryPageBytes);
          if (page.length === 0 || !deliverPage(ws, page)) break;
          state.sent = page[page.length - 1]!.seq;
        }
      }
      if (state.sent !== sentBefore) saveSocketState(ws, state);
    }
  }

  /** Queues delivered receipts for the senders of these messages, in the acknowledgement's transaction. */
  private queueDeliveredReceipts(deviceId: number, owed: { sender: string; senderDevice: number; clientId: string }[]) {
    const bySender = new Map<string, MessageRef[]>();
    for (const m of owed) {
      const refs = bySender.get(m.sender);
      if (refs) refs.push({ device: m.senderDevice, id: m.clientId });
      else bySender.set(m.sender, [{ device: m.senderDevice, id: m.clientId }]);
    }
    const ts = Date.now();
    this.receipts.add(
      [...bySender].map(([target, refs]) => ({
        target,
        receipt: { id: crypto.randomUUID(), receipt: "delivered", from: this.userId!, fromDevice: deviceId, refs, ts },
      })),
      (target) => !target.startsWith(GROUP_ORIGIN_PREFIX), // a group's receipts go to its object, which never calls `deliver`
    );
  }

  // ---- Helpers ----

  private fail(ws: WebSocket, code: ErrorCode, message: string, id?: string, mismatches?: DeviceMismatch[], group?: GroupEpoch): string {
    send(ws, { type: "error", ...(id !== undefined && { id }), code, message, ...(mismatches && { mismatches }), ...(group && { group }) });
    this.log.info("frame", { outcome: code });
    return "error";
  }

  private dropDevice(deviceId: number, reason: string): void {
    this.heldAcks.delete(deviceId);
    this.closeSockets(deviceId, CLOSE_CODES.unauthorized, reason);
    this.inbox.removeDevice(deviceId);
    this.prekeys.removeDevice(deviceId);
  }

  private closeSockets(deviceId: number, code: number, reason: string): void {
    for (const ws of this.ctx.getWebSockets(deviceTag(deviceId))) rejectSocket(ws, reason, code);
  }



  private setUserId(userId: string): void {
    if (this.userId === userId) return;
    this.load().userId = userId;
    this.setMeta("user_id", userId);
  }

  private meta(key: string): string | null {
    return this.sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = ?", key).toArray()[0]?.value ?? null;
  }

  private setMeta(key: string, value: string): void {
    this.sql.exec("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", key, value);
  }
}

/** Sends one `deliver` frame; false when the socket is closing (the envelopes stay stored). */
function deliverPage(ws: WebSocket, page: StoredEnvelope[]): boolean {
  try {
    ws.send(`{"type":"deliver","envelopes":[${page.map((e) => e.json).join(",")}]}`);
    return true;
  } catch {
    return false;
  }
}

function fitsOnePage(envelopes: StoredEnvelope[]): boolean {
  if (envelopes.length > LIMITS.deliveryPageSize) return false;
  let bytes = 0;
  for (const e of envelopes) bytes += e.json.length;
  return envelopes.length === 1 || bytes <= LIMITS.deliveryPageBytes;
}

/** Envelopes stored during one event, per device, to push right after. */
class FreshEnvelopes {
  private readonly byDevice = new Map<number, StoredEnvelope[]>();

  add(stored: Map<number, StoredEnvelope>): void {
    for (const [device, envelope] of stored) {
      const list = this.byDevice.get(device);
      if (list) list.push(envelope);
      else this.byDevice.set(device, [envelope]);
    }
  }

  pumpAll(pump: (device: number, envelopes: StoredEnvelope[]) => void): void {
    for (const [device, envelopes] of this.byDevice) pump(device, envelopes);
  }
}

function send(ws: WebSocket, frame: ServerFrame): void {
  sendText(ws, JSON.stringify(frame));
}

function sendText(ws: WebSocket, text: string): void {
  try {
    ws.send(text);
  } catch {
    // the socket is closing; anything durable is redelivered on the next connection
  }
}

function rejectSocket(ws: WebSocket, reason: string, code: number = CLOSE_CODES.unauthorized): void {
  const codeName = code === CLOSE_CODES.replaced ? "conflict" : "unauthorized";
  send(ws, { type: "error", code: codeName, message: reason });
  try {
    ws.close(code, reason);
  } catch {
    // already closed
  }
}

function findDuplicateDevice(messages: readonly { device: number }[]): number | undefined {
  const seen = new Set<number>();
  for (const { device } of messages) {
    if (seen.has(device)) return device;
    seen.add(device);
  }
  return undefined;
}
