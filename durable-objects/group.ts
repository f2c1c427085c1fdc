/**
 * GroupDO: one per group or channel (`idFromName(groupId)`). Holds membership and roles, gives every
 * message and membership event the next group sequence, stores it once, and answers the sender before any
 * fan-out. Groups up to `LIMITS.maxFanoutOnWrite` members are then copied into every member's inbox
 * (`Fanout`); larger groups and channels are read from the log by cursor, with a live notice to members
 * who are online.
 *
 * Every method takes the asking device and authorises it here: non-members learn nothing (`not_found`),
 * members without the right role get `forbidden`. Refusals are returned, not thrown, so they cross RPC typed.
 */
import { DurableObject } from "cloudflare:workers";
import { fromBase64 } from "../src/protocol/base64";
import type { ErrorCode } from "../src/protocol/errors";
import {
  channelPostSignedBytes,
  type FanoutMode,
  type GroupEpoch,
  type GroupEvent,
  type GroupKind,
  type GroupMember,
  type GroupReceiptList,
  type GroupRole,
  type GroupSendFrame,
  type GroupState,
  type InviteResponse,
  type JoinRequest,
  type JoinResponse,
} from "../src/protocol/groups";
import { xeddsaVerify } from "../src/protocol/keys";
import { LIMITS } from "../src/protocol/limits";
import { logger, type Logger } from "../src/log";
import { Fanout, type GroupDelivery } from "./group-fanout";
import { forEachLimited } from "./limited";
import { GroupLog } from "./group-log";
import { GroupReceipts, LiveCounts, type ReceiptKind } from "./group-receipts";
import { GROUP_SCHEMA } from "./group-schema";
import { SharedAlarm } from "./shared-alarm";
import { ensureSchema } from "./schema";
import { StubCache } from "./stub-cache";

export interface Caller {
  userId: string;
  deviceId: number;
}

export type Refusal = { ok: false; status: 400 | 403 | 404 | 409; code: ErrorCode; message: string; group?: GroupEpoch };
export type Outcome<T> = { ok: true; value: T } | Refusal;

const ok = <T>(value: T): Outcome<T> => ({ ok: true, value });
const refuse = (status: Refusal["status"], code: ErrorCode, message: string, group?: GroupEpoch): Refusal => ({
  ok: false,
  status,
  code,
  message,
  ...(group && { group }),
});
const NOT_FOUND = refuse(404, "not_found", "no such group, or you are not a member");
const ADMINS_ONLY = refuse(403, "forbidden", "only the group's admins can do this");

/** Online members told about new entries at once (the notices go out after the sender's answer, see noticeSoon). */
const NOTICE_CONCURRENCY = 1024;
/** Members' object stubs kept for reuse: every member of the largest group fanned out or told live. */
const MEMBER_STUB_CACHE_SIZE = 2_048;
const NOTICE_MISSES_BEFORE_FORGET = 3;

type MemberRow = {
  user_id: string;
  role: GroupRole;
  since: number;
};

export class GroupDO extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  private readonly log: GroupLog;
  private readonly receipts: GroupReceipts;
  private readonly users = new StubCache(this.env.USER, MEMBER_STUB_CACHE_SIZE);
  private readonly liveCounts = new LiveCounts((sender, counts) =>
    this.users
      .call(sender, (stub) => stub.groupReceipts(this.groupId!, counts))
      .catch((error: unknown) => this.logger.info("group_receipts", { outcome: "sender_unavailable", error: String(error) })),
  );
  private readonly fanout: Fanout;
  private readonly logger: Logger;
  private groupId: string | null;
  private kind: GroupKind;
  private epoch: number;
  private info: string | null;
  /** Member count, cached between membership changes (a channel has up to 100,000). */
  private members: number | null = null;
  /** Notices in a row that found a watcher without sockets. */
  private readonly noticeMisses = new Map<string, number>();
  /** The live notice the next alarm sends: up to which entry, and the entries themselves while they are small. */
  private pendingNotice: { upTo: number; entries: string[] | null; bytes: number } | null = null;
  private readonly alarms: SharedAlarm;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    ensureSchema(this.sql, GROUP_SCHEMA);
    this.log = new GroupLog(this.sql);
    this.receipts = new GroupReceipts(this.sql, this.log);
    this.logger = logger(env.LOG_LEVEL);
    this.fanout = new Fanout(
      this.sql,
      (this.alarms = new SharedAlarm(ctx.storage)),
      (userId, items) => this.users.call(userId, (stub) => stub.deliverGroup({ groupId: this.groupId!, kind: this.kind, fanout: this.mode() }, items)),
      (userId, error) => this.logger.info("group_fanout", { outcome: "retry_later", user: userId, error: String(error) }),
    );
    this.groupId = this.meta("group_id");
    this.kind = (this.meta("kind") as GroupKind | null) ?? "group";
    this.epoch = Number(this.meta("epoch") ?? 0);
    this.info = this.meta("info");
  }

  // ---- Membership ----

  async create(caller: Caller, groupId: string, kind: GroupKind, members: string[], info: string | null): Promise<Outcome<GroupState>> {
    if (this.groupId !== null) return refuse(409, "conflict", "group exists");
    const others = members.filter((m) => m !== caller.userId);
    this.groupId = groupId;
    this.kind = kind;
    this.info = info;
    this.setMeta("group_id", groupId);
    this.setMeta("kind", kind);
    if (info !== null) this.setMeta("info", info);
    const listed: GroupMember[] = [{ userId: caller.userId, role: "admin", since: 1 }, ...others.map((userId) => ({ userId, role: "member" as const, since: 1 }))];
    for (const m of listed) this.sql.exec("INSERT INTO members (user_id, role, since) VALUES (?, ?, ?)", m.userId, m.role, m.since);
    this.change({ type: "created", by: caller.userId, kind, members: listed, info }, { joined: listed.map((m) => m.userId) });
    return ok(this.stateFor(caller.userId)!);
  }

  async state(caller: Caller): Promise<Outcome<GroupState>> {
    const state = this.stateFor(caller.userId);
    return state ? ok(state) : NOT_FOUND;
  }

  async updateInfo(caller: Caller, info: string): Promise<Outcome<GroupState>> {
    const refusal = this.requireAdmin(caller);
    if (refusal) return refusal;
    this.info = info;
    this.setMeta("info", info);
    this.change({ type: "info", by: caller.userId, info }, { keepEpoch: true });
    return ok(this.stateFor(caller.userId)!);
  }

  async addMembers(caller: Caller, userIds: string[]): Promise<Outcome<GroupState>> {
    const refusal = this.requireAdmin(caller);
    if (refusal) return refusal;
    const existing = userIds.find((u) => this.member(u));
    if (existing) return refuse(409, "conflict", `${existing} is already a member`);
    if (this.memberCount() + userIds.length > this.capacity()) {
      return refuse(409, "too_many_members", `a ${this.kind} has at most ${this.capacity()} members`);
    }
    const since = this.log.head() + 1;
    for (const userId of userIds) {
      this.sql.exec("INSERT INTO members (user_id, role, since) VALUES (?, 'member', ?)", userId, since);
      this.sql.exec("DELETE FROM join_requests WHERE user_id = ?", userId);
    }
    if (this.kind === "channel") this.subscribersChanged(userIds, true);
    else this.change({ type: "added", by: caller.userId, members: userIds }, { joined: userIds });
    return ok(this.stateFor(caller.userId)!);
  }

  /** An admin removes a member, or a member leaves (`userId` is the caller). */
  async removeMember(caller: Caller, userId: string): Promise<Outcome<null>> {
    const me = this.member(caller.userId);
    if (!me) return NOT_FOUND;
    if (userId !== caller.userId && me.role !== "admin") return ADMINS_ONLY;
    const target = this.member(userId);
    if (!target) return refuse(404, "not_found", "not a member of this group");
    this.sql.exec("DELETE FROM members WHERE user_id = ?", userId);
    this.sql.exec("DELETE FROM watchers WHERE user_id = ?", userId);
    if (this.kind === "channel" && target.role === "member") {
      this.subscribersChanged([userId], false);
      return ok(null);
    }
    const event: GroupEvent = userId === caller.userId ? { type: "left", userId } : { type: "removed", by: caller.userId, userId };
    this.change(event, { left: [userId] });
    this.keepAnAdmin();
    return ok(null);
  }

  async setRole(caller: Caller, userId: string, role: GroupRole): Promise<Outcome<GroupState>> {
    const refusal = this.requireAdmin(caller);
    if (refusal) return refusal;
    const target = this.member(userId);
    if (!target) return refuse(404, "not_found", "not a member of this group");
    if (target.role !== role) {
      if (role === "member" && this.sql.exec("SELECT COUNT(*) AS n FROM members WHERE role = 'admin'").one().n === 1) {
        return refuse(409, "conflict", "a group keeps at least one admin: promote someone first");
      }
      this.sql.exec("UPDATE members SET role = ? WHERE user_id = ?", role, userId);
      this.change({ type: "role", by: caller.userId, userId, role }, {});
    }
    return ok(this.stateFor(caller.userId)!);
  }

  // ---- Invites ----

  async createInvite(caller: Caller, secretHash: string, approval: boolean): Promise<Outcome<Omit<InviteResponse, "token">>> {
    const refusal = this.requireAdmin(caller);
    if (refusal) return refusal;
    const open = this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM invites").one().n;
    if (open >= LIMITS.maxGroupInvites) return refuse(409, "conflict", `at most ${LIMITS.maxGroupInvites} open invite links; revoke one`);
    this.sql.exec(
      "INSERT INTO invites (secret_hash, approval, created_by, created_at) VALUES (?, ?, ?, ?)",
      secretHash,
      approval ? 1 : 0,
      caller.userId,
      Date.now(),
    );
    return ok({ approval });
  }

  async revokeInvite(caller: Caller, secretHash: string): Promise<Outcome<null>> {
    const refusal = this.requireAdmin(caller);
    if (refusal) return refusal;
    const deleted = this.sql.exec("DELETE FROM invites WHERE secret_hash = ?", secretHash).rowsWritten;
    return deleted > 0 ? ok(null) : refuse(404, "not_found", "no such invite link");
  }

  async join(caller: Caller, secretHash: string): Promise<Outcome<JoinResponse>> {
    const invite = this.sql.exec<{ approval: number }>("SELECT approval FROM invites WHERE secret_hash = ?", secretHash).toArray()[0];
    if (!invite || this.groupId === null) return refuse(404, "not_found", "this invite link is revoked or unknown");
    if (this.member(caller.userId)) return ok({ joined: true, group: this.stateFor(caller.userId)! });
    if (this.memberCount() >= this.capacity()) return refuse(409, "too_many_members", `a ${this.kind} has at most ${this.capacity()} members`);
    if (invite.approval === 1) {
      const pending = this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM join_requests").one().n;
      if (pending >= LIMITS.maxJoinRequests) return refuse(409, "conflict", "too many pending join requests; try later");
      this.sql.exec("INSERT OR IGNORE INTO join_requests (user_id, requested_at) VALUES (?, ?)", caller.userId, Date.now());
      return ok({ joined: false, pending: true });
    }
    this.admit(caller.userId);
    return ok({ joined: true, group: this.stateFor(caller.userId)! });
  }

  async joinRequests(caller: Caller): Promise<Outcome<JoinRequest[]>> {
    const refusal = this.requireAdmin(caller);
    if (refusal) return refusal;
    const rows = this.sql
      .exec<{ user_id: string; requested_at: number }>("SELECT user_id, requested_at FROM join_requests ORDER BY requested_at, user_id")
      .toArray();
    return ok(rows.map((r) => ({ userId: r.user_id, requestedAt: r.requested_at })));
  }

  async decideRequest(caller: Caller, userId: string, approve: boolean): Promise<Outcome<null>> {
    const refusal = this.requireAdmin(caller);
    if (refusal) return refusal;
    const pending = this.sql.exec("SELECT 1 FROM join_requests WHERE user_id = ?", userId).toArray().length > 0;
    if (!pending) return refuse(404, "not_found", "no pending join request from this user");
    const admitting = approve && !this.member(userId);
    // Refuse before changing anything: a full group keeps the request for a later decision.
    if (admitting && this.memberCount() >= this.capacity()) return refuse(409, "too_many_members", `a ${this.kind} has at most ${this.capacity()} members`);
    this.sql.exec("DELETE FROM join_requests WHERE user_id = ?", userId);
    if (admitting) this.admit(userId, caller.userId);
    return ok(null);
  }

  // ---- Messages ----

  /** Stores a group message once and answers before any fan-out. A retried client id gets its first answer. */
  async send(caller: Caller, frame: Pick<GroupSendFrame, "id" | "epoch" | "body" | "signature">): Promise<Outcome<{ ts: number; groupSeq: number }>> {
    const me = this.member(caller.userId);
    if (!me) return NOT_FOUND;
    const before = this.log.sentBefore(caller.userId, caller.deviceId, frame.id);
    if (before) return ok({ ts: before.ts, groupSeq: before.seq });
    if (this.kind === "channel") {
      if (me.role !== "admin") return refuse(403, "forbidden", "only a channel's admins post");
      const refusal = await this.checkPostSignature(caller, frame);
      if (refusal) return refusal;
      // The signature check awaited D1: a retry may have been stored meanwhile.
      const raced = this.log.sentBefore(caller.userId, caller.deviceId, frame.id);
      if (raced) return ok({ ts: raced.ts, groupSeq: raced.seq });
    } else if (frame.epoch !== this.epoch) {
      return refuse(409, "stale_epoch", `the group is at epoch ${this.epoch}; rotate keys and retry with the same id`, this.epochInfo());
    }
    const mode = this.mode();
    const stored = this.log.appendMessage(
      {
        group: this.groupId!,
        epoch: this.epoch,
        from: caller.userId,
        fromDevice: caller.deviceId,
        id: frame.id,
        ts: Date.now(),
        body: frame.body,
        ...(frame.signature !== undefined && { signature: frame.signature }),
      },
      this.memberCount() - 1,
    );
    if (mode === "write") {
      this.sql.exec("INSERT INTO fanout (user_id, seq, store) SELECT user_id, ?, 1 FROM members", stored.seq);
      this.fanout.armSafetyNet();
      void this.fanout.kick();
    } else {
      this.noticeSoon(stored.seq, stored.json);
    }
    return ok({ ts: stored.ts, groupSeq: stored.seq });
  }

  /** Log entries after `after` that the caller may read (nothing from before they joined), as JSON text. */
  async readLog(caller: Caller, after: number, limit: number): Promise<Outcome<string>> {
    const me = this.member(caller.userId);
    if (!me) return NOT_FOUND;
    // Channels are public broadcasts: subscribers read every retained post. Group members read from when they joined.
    const page = this.log.page(after, this.kind === "channel" ? 0 : me.since, limit);
    if (this.kind === "group" && this.mode() === "read") {
      const received = page.messages.filter((m) => m.sender !== caller.userId).map((m) => m.seq);
      if (received.length > 0) this.recordReceipts(caller.userId, "delivered", received);
    }
    return ok(`{"entries":${page.json},"head":${this.log.head()}}`);
  }

  /** A member's `group_read`: reads of messages they were sent (nothing from before they joined). */
  async markRead(caller: Caller, seqs: number[]): Promise<Outcome<null>> {
    const me = this.member(caller.userId);
    if (!me) return NOT_FOUND;
    const received = seqs.filter((seq) => seq >= me.since);
    if (received.length > 0) await this.recordReceipts(caller.userId, "read", received);
    return ok(null);
  }

  /** Delivered or read receipts of a member; the senders' devices get the new counts live. */
  async recordReceipts(userId: string, kind: ReceiptKind, seqs: number[]): Promise<void> {
    if (this.kind === "channel") return;
    if (kind === "read" && !this.member(userId)) return;
    const changed = this.receipts.record(userId, kind, seqs, Date.now());
    for (const [sender, counts] of changed) this.liveCounts.add(sender, counts);
  }

  async receiptList(caller: Caller, seq: number): Promise<Outcome<GroupReceiptList>> {
    if (!this.member(caller.userId)) return NOT_FOUND;
    const message = this.log.message(seq);
    if (!message) return refuse(404, "not_found", "no such message in this group's log");
    if (message.sender !== caller.userId) return refuse(403, "forbidden", "only the message's sender sees its receipts");
    return ok(this.receipts.list(seq, message.clientId, message.recipients));
  }

  /** A member's device came online: tell it of new entries while it stays online. Returns the head. */
  async watch(userId: string): Promise<number | null> {
    if (!this.member(userId)) return null;
    this.sql.exec("INSERT OR IGNORE INTO watchers (user_id) VALUES (?)", userId);
    this.noticeMisses.delete(userId);
    return this.log.head();
  }

  override async alarm(): Promise<void> {
    this.alarms.fired();
    const notice = this.pendingNotice;
    this.pendingNotice = null;
    // Not awaited: a member whose object never answers must not hold the next alarm (and later notices) back.
    if (notice) void this.notifyWatchers(notice.upTo, notice.entries ?? undefined);
    await this.fanout.onAlarm();
  }

  // ---- Internals ----

  /**
   * Records a membership or info change: the next epoch (unless `keepEpoch`), an ordered event in the log,
   * and its fan-out: to every member (and those it removed) in fan-out-on-write groups, else to the users it
   * affects (their UserDOs keep the list of their groups). A change of fan-out mode is told to every member.
   */
  private change(event: GroupEvent, who: { joined?: string[]; left?: string[]; keepEpoch?: boolean }): void {
    this.members = null;
    const modeBefore = this.meta("fanout") as FanoutMode | null;
    if (!who.keepEpoch) {
      this.epoch++;
      this.setMeta("epoch", String(this.epoch));
    }
    const seq = this.log.appendEvent(this.groupId!, this.epoch, event, Date.now());
    const mode = this.mode();
    const modeChanged = modeBefore !== mode;
    if (modeChanged) this.setMeta("fanout", mode);
    const store = mode === "write" ? 1 : 0;
    const owed = new Map<string, number | null>();
    if (mode === "write" || modeChanged) {
      for (const { user_id } of this.sql.exec<{ user_id: string }>("SELECT user_id FROM members")) owed.set(user_id, modeChanged ? 1 : null);
    }
    for (const userId of who.joined ?? []) owed.set(userId, 1);
    for (const userId of who.left ?? []) owed.set(userId, 0);
    for (const [userId, membership] of owed) {
      this.sql.exec("INSERT INTO fanout (user_id, seq, store, membership) VALUES (?, ?, ?, ?)", userId, seq, store, membership);
    }
    if (owed.size > 0) {
      this.fanout.armSafetyNet();
      void this.fanout.kick();
    }
    if (mode === "read") this.noticeSoon(seq);
  }

  private admit(userId: string, approvedBy?: string): void {
    this.sql.exec("INSERT INTO members (user_id, role, since) VALUES (?, 'member', ?)", userId, this.log.head() + 1);
    this.sql.exec("DELETE FROM join_requests WHERE user_id = ?", userId); // asked on one link, joined by another
    if (this.kind === "channel") this.subscribersChanged([userId], true);
    else this.change({ type: "joined", userId, ...(approvedBy !== undefined && { approvedBy }) }, { joined: [userId] });
  }

  /**
   * Subscribers joining or leaving a channel are not group events (a channel with 100,000 subscribers would
   * otherwise tell each of them of every other): no epoch, no log entry, only the subscriber's own list of groups,
   * kept by the same durable fan-out (sequence 0: the latest membership wins).
   */
  private subscribersChanged(userIds: string[], joined: boolean): void {
    this.members = null;
    for (const userId of userIds) {
      this.sql.exec("INSERT OR REPLACE INTO fanout (user_id, seq, store, membership) VALUES (?, 0, 0, ?)", userId, joined ? 1 : 0);
    }
    this.fanout.armSafetyNet();
    void this.fanout.kick();
  }

  /** A group whose last admin left gets its longest-standing member as admin. */
  private keepAnAdmin(): void {
    if (this.sql.exec("SELECT 1 FROM members WHERE role = 'admin' LIMIT 1").toArray().length > 0) return;
    const next = this.sql.exec<{ user_id: string }>("SELECT user_id FROM members ORDER BY since, user_id LIMIT 1").toArray()[0];
    if (!next) return;
    this.sql.exec("UPDATE members SET role = 'admin' WHERE user_id = ?", next.user_id);
    this.change({ type: "role", by: next.user_id, userId: next.user_id, role: "admin" }, {});
  }

  private async checkPostSignature(caller: Caller, frame: { id: string; body: string; signature?: string | undefined }): Promise<Refusal | null> {
    if (frame.signature === undefined) return refuse(400, "bad_request", "a channel post needs the posting device's signature");
    const row = await this.env.DB.prepare("SELECT identity_key FROM devices WHERE user_id = ? AND device_id = ?")
      .bind(caller.userId, caller.deviceId)
      .first<{ identity_key: string }>();
    if (!row) return refuse(403, "forbidden", "the posting device is not registered");
    const signed = channelPostSignedBytes({ group: this.groupId!, from: caller.userId, fromDevice: caller.deviceId, id: frame.id }, fromBase64(frame.body));
    if (!xeddsaVerify(fromBase64(row.identity_key), signed, fromBase64(frame.signature))) {
      return refuse(400, "invalid_signature", "the post's signature does not verify against the device's identity key");
    }
    return null;
  }

  /**
   * Queues a live notice of entry `seq` for the alarm, which runs right after this call has answered: started
   * here, a thousand notices would queue the sender's acknowledgement behind them (a local workerd runs every
   * object on one thread). The newest entries ride in the notice while they are consecutive and small in all.
   */
  private noticeSoon(seq: number, json?: string): void {
    const queued = this.pendingNotice;
    const follows = queued !== null && queued.entries !== null && queued.upTo === seq - 1 ? { entries: queued.entries, bytes: queued.bytes } : null;
    let entries: string[] | null = null;
    let bytes = 0;
    if (json !== undefined && json.length <= LIMITS.maxNoticeEntryBytes) {
      const together = follows !== null && follows.bytes + json.length <= LIMITS.maxNoticeEntryBytes;
      entries = together ? [...follows.entries, json] : [json];
      bytes = (together ? follows.bytes : 0) + json.length;
    }
    this.pendingNotice = { upTo: seq, entries, bytes };
    this.alarms.requestBy(Date.now());
  }

  /** Tells online members of a fan-out-on-read group that the log reached `upTo`; forgets those found offline. */
  private async notifyWatchers(upTo: number, entries?: string[]): Promise<void> {
    const watchers = this.sql.exec<{ user_id: string }>("SELECT user_id FROM watchers").toArray().map((r) => r.user_id);
    const offline: string[] = [];
    const tell = async (userId: string) => {
      if ((await this.tellWatcher(userId, upTo, entries)) === false) offline.push(userId);
    };
    await forEachLimited(watchers, NOTICE_CONCURRENCY, tell);
    // A member found without sockets three notices running is forgotten (its next connect registers it again);
    // one miss alone may be a reconnect in flight.
    for (const userId of offline) {
      const misses = (this.noticeMisses.get(userId) ?? 0) + 1;
      if (misses < NOTICE_MISSES_BEFORE_FORGET) this.noticeMisses.set(userId, misses);
      else {
        this.noticeMisses.delete(userId);
        this.sql.exec("DELETE FROM watchers WHERE user_id = ?", userId);
      }
    }
  }

  /** One live notice, tried twice: whether the member had sockets (undefined when its object failed twice). */
  private async tellWatcher(userId: string, upTo: number, entries?: string[]): Promise<boolean | undefined> {
    for (let attempt = 1; attempt <= 2; attempt++) {
      try {
        const online = await this.users.call(userId, (stub) => stub.groupNotice(this.groupId!, upTo, entries));
        if (online) this.noticeMisses.delete(userId);
        return online;
      } catch (error) {
        if (attempt === 2) this.logger.info("group_notice", { outcome: "member_unavailable", error: String(error) });
      }
    }
    return undefined;
  }

  private stateFor(userId: string): GroupState | null {
    const me = this.member(userId);
    if (!me || this.groupId === null) return null;
    const rows =
      this.kind === "channel"
        ? this.sql.exec<MemberRow>("SELECT user_id, role, since FROM members WHERE role = 'admin' ORDER BY since, user_id").toArray()
        : this.sql.exec<MemberRow>("SELECT user_id, role, since FROM members ORDER BY since, user_id").toArray();
    return {
      groupId: this.groupId,
      kind: this.kind,
      epoch: this.epoch,
      seq: this.log.head(),
      fanout: this.mode(),
      info: this.info,
      memberCount: this.memberCount(),
      members: rows.map(toMember),
      you: toMember(me),
    };
  }

  private epochInfo(): GroupEpoch {
    const members = this.sql.exec<{ user_id: string }>("SELECT user_id FROM members ORDER BY user_id").toArray().map((r) => r.user_id);
    return { groupId: this.groupId!, epoch: this.epoch, members };
  }

  private requireAdmin(caller: Caller): Refusal | null {
    const me = this.member(caller.userId);
    if (!me) return NOT_FOUND;
    return me.role === "admin" ? null : ADMINS_ONLY;
  }

  private member(userId: string): MemberRow | undefined {
    return this.sql.exec<MemberRow>("SELECT user_id, role, since FROM members WHERE user_id = ?", userId).toArray()[0];
  }

  private memberCount(): number {
    this.members ??= this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM members").one().n;
    return this.members;
  }

  private capacity(): number {
    return this.kind === "channel" ? LIMITS.maxChannelSubscribers : LIMITS.maxGroupMembers;
  }

  private mode(): FanoutMode {
    return this.kind === "group" && this.memberCount() <= LIMITS.maxFanoutOnWrite ? "write" : "read";
  }



  private meta(key: string): string | null {
    return this.sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = ?", key).toArray()[0]?.value ?? null;
  }

  private setMeta(key: string, value: string): void {
    this.sql.exec("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", key, value);
  }
}

function toMember(row: MemberRow): GroupMember {
  return { userId: row.user_id, role: row.role, since: row.since };
}

export type { GroupDelivery };
