/**
 * The group and channel half of `Relay`'s public API (`Relay` extends {@link RelayGroups}): groups with sender keys
 * (fan-out on write, or on read past 256 members), membership and invites, and broadcast channels whose posts are
 * sealed with a key that travels only in invite links and signed by the posting device.
 */
import { toBase64 } from "../../src/protocol/base64";
import type { GroupMembership, GroupReceiptList, GroupRole, GroupState, InviteResponse, JoinRequest, JoinResponse } from "../../src/protocol/groups";
import { LIMITS } from "../../src/protocol/limits";
import { groupHistoryKey } from "../store/keys";
import { put } from "../store/types";
import type { SendContent } from "../relay";
import { inviteLink, newChannelKey, parseInviteLink } from "./channel-crypto";
import type { GroupClient } from "./client";
import { storeGroupOps } from "./state";
import type { GroupHistoryRecord, GroupMessageRecord } from "./types";

/** Room left in an envelope for padding, the JSON content wrapper and the sender-key or AES-GCM framing. */
const MAX_CONTENT_BYTES = LIMITS.maxEnvelopeBytes - 4096;

/** Which part of a group's local history to list. */
export interface GroupHistoryQuery {
  /** At most this many (default 50), the newest ones. */
  limit?: number;
  /** Only entries before this group sequence (paging backwards). */
  before?: number;
}

function contentBody(content: SendContent) {
  const body = typeof content === "string" ? { text: content } : content instanceof Uint8Array ? { bytes: Uint8Array.from(content) } : undefined;
  if (!body) throw new TypeError("content must be a string or a Uint8Array");
  const size = "text" in body ? new TextEncoder().encode(body.text).length : (body.bytes.length * 4) / 3;
  if (size > MAX_CONTENT_BYTES) throw new RangeError(`message too large: at most ${MAX_CONTENT_BYTES} bytes`);
  return body;
}

/**
 * Groups and channels on a signed-in device. Use them through `Relay`.
 * @example
 * const group = await relay.createGroup({ members: [bobId, carolId] });
 * relay.on("groupMessage", (m) => console.log(m.group, m.from, m.text));
 * await relay.sendToGroup(group.groupId, "hi all");
 */
export abstract class RelayGroups {
  /** @internal */
  protected abstract readonly groupClient: GroupClient;

  private get me(): string {
    return this.groupClient.core.userId;
  }

  // ---- Groups ----

  /**
   * Creates a group with you as its first admin and `members` (user ids) in it. `info` is the group's title,
   * description and avatar reference as bytes you encrypted: the server stores it and never reads it.
   * @example
   * const { groupId } = await relay.createGroup({ members: [bobId, carolId] });
   */
  async createGroup(options: { members?: string[]; info?: Uint8Array } = {}): Promise<GroupState> {
    const state = await this.groupClient.api.create({ kind: "group", members: options.members ?? [], ...(options.info && { info: toBase64(options.info) }) });
    await this.groupClient.core.store.write(storeGroupOps(state));
    return state;
  }

  /**
   * The group's current state from the server (members, roles, epoch), also kept locally.
   * @example
   * const { members, epoch } = await relay.group(groupId);
   */
  async group(groupId: string): Promise<GroupState> {
    const state = await this.groupClient.api.get(groupId);
    await this.groupClient.core.store.write(storeGroupOps(state));
    return state;
  }

  /**
   * Your groups and channels.
   * @example
   * for (const { groupId, kind } of await relay.groups()) console.log(kind, groupId);
   */
  async groups(): Promise<GroupMembership[]> {
    return (await this.groupClient.api.list()).groups;
  }

  /**
   * Adds members (admins only); they read nothing sent before. Returns the new state.
   * @example
   * await relay.addMembers(groupId, [daveId]);
   */
  async addMembers(groupId: string, members: string[]): Promise<GroupState> {
    await this.groupClient.api.addMembers(groupId, members);
    return this.group(groupId);
  }

  /**
   * Removes a member (admins only). Your next message goes out under a new sender key, so the removed member's
   * devices cannot read it (other members' devices rotate theirs when they see the removal).
   * @example
   * await relay.removeMember(groupId, carolId);
   */
  async removeMember(groupId: string, userId: string): Promise<void> {
    await this.groupClient.api.removeMember(groupId, userId);
    const core = this.groupClient.core;
    await core.lane.run(async () => {
      const own = await core.store.get("groupSenderKeys", groupId);
      if (own) await core.store.write([put("groupSenderKeys", groupId, { ...own, rotate: true })]);
    });
    if (userId === this.me) await this.groupClient.refresh(groupId);
  }

  /**
   * Leaves the group (when the last admin leaves, the longest-standing member becomes admin).
   * @example
   * await relay.leave(groupId);
   */
  leave(groupId: string): Promise<void> {
    return this.removeMember(groupId, this.me);
  }

  /**
   * Promotes a member to admin or demotes an admin (admins only). Returns the new state.
   * @example
   * await relay.setRole(groupId, bobId, "admin");
   */
  async setRole(groupId: string, userId: string, role: GroupRole): Promise<GroupState> {
    await this.groupClient.api.setRole(groupId, userId, role);
    return this.group(groupId);
  }

  /**
   * Replaces the group's encrypted info (admins only).
   * @example
   * await relay.updateGroupInfo(groupId, await encryptInfo({ title: "Trip" }));
   */
  async updateGroupInfo(groupId: string, info: Uint8Array): Promise<void> {
    await this.groupClient.api.updateInfo(groupId, toBase64(info));
  }

  /**
   * Creates an invite token (admins only); with `approval`, joining waits for an admin's decision.
   * @example
   * const { token } = await relay.createInvite(groupId, { approval: true });
   */
  createInvite(groupId: string, options: { approval?: boolean } = {}): Promise<InviteResponse> {
    return this.groupClient.api.createInvite(groupId, options.approval ?? false);
  }

  /**
   * Revokes an invite token or link (admins only).
   * @example
   * await relay.revokeInvite(groupId, token);
   */
  async revokeInvite(groupId: string, tokenOrLink: string): Promise<void> {
    await this.groupClient.api.revokeInvite(groupId, parseInviteLink(tokenOrLink).token);
  }

  /**
   * Joins by invite token or link: `{ joined: true, group }`, or `{ joined: false, pending: true }` while the link
   * waits for an admin's approval. A channel link's key is kept on this device.
   * @example
   * const answer = await relay.joinByInvite(token);
   */
  async joinByInvite(tokenOrLink: string): Promise<JoinResponse> {
    const { token, groupId, key } = parseInviteLink(tokenOrLink);
    const answer = await this.groupClient.api.join(token);
    await this.groupClient.core.store.write([...(key ? [put("channelKeys", groupId, key)] : []), ...(answer.joined ? storeGroupOps(answer.group) : [])]);
    if (answer.joined && answer.group.fanout === "read") void this.groupClient.reader.read(groupId).catch((error) => this.groupClient.core.events.emit("error", error));
    return answer;
  }

  /**
   * Requests to join waiting for approval (admins only).
   * @example
   * for (const { userId } of await relay.joinRequests(groupId)) await relay.decideJoinRequest(groupId, userId, true);
   */
  async joinRequests(groupId: string): Promise<JoinRequest[]> {
    return (await this.groupClient.api.joinRequests(groupId)).requests;
  }

  /**
   * Approves (the user joins) or denies a join request (admins only).
   * @example
   * await relay.decideJoinRequest(groupId, carolId, true);
   */
  decideJoinRequest(groupId: string, userId: string, approve: boolean): Promise<void> {
    return this.groupClient.api.decideJoinRequest(groupId, userId, approve);
  }

  // ---- Group messages ----

  /**
   * Sends text or bytes to the group; resolves with the client message id once stored locally. It goes out now or
   * when the connection is back (after our sender key reached every member), and a `groupStatus` event says `sent`
   * with its group sequence.
   * @example
   * const id = await relay.sendToGroup(groupId, "hi all");
   */
  sendToGroup(groupId: string, content: SendContent): Promise<string> {
    return this.groupClient.outbox.enqueueSend(groupId, contentBody(content));
  }

  /**
   * Tells the group these of its messages (group sequences) were read; their senders see the counts.
   * @example
   * await relay.markGroupRead(groupId, [m.groupSeq]);
   */
  async markGroupRead(groupId: string, seqs: number[]): Promise<void> {
    for (let i = 0; i < seqs.length; i += LIMITS.maxReceiptRefs) await this.groupClient.outbox.enqueueRead(groupId, seqs.slice(i, i + LIMITS.maxReceiptRefs));
  }

  /**
   * Who received and read one of your group messages (its sender only).
   * @example
   * const { delivered, read, receipts } = await relay.groupReceipts(groupId, groupSeq);
   */
  groupReceipts(groupId: string, groupSeq: number): Promise<GroupReceiptList> {
    return this.groupClient.api.receipts(groupId, groupSeq);
  }

  /**
   * The group's local history (messages, membership changes, skipped entries), oldest first.
   * @example
   * const latest = await relay.groupHistory(groupId, { limit: 20 });
   */
  async groupHistory(groupId: string, query: GroupHistoryQuery = {}): Promise<GroupHistoryRecord[]> {
    const entries = await this.groupClient.core.store.list("groupHistory", {
      prefix: `${groupId}|`,
      ...(query.before !== undefined && { before: groupHistoryKey(groupId, query.before) }),
      limit: query.limit ?? 50,
      reverse: true,
    });
    return entries.map((e) => e.value).reverse();
  }

  // ---- Channels ----

  /**
   * Creates a broadcast channel (you are its admin; only admins post). Its 32-byte key is made and kept here and
   * travels only in the links of {@link channelInvite}.
   * @example
   * const { groupId: channelId } = await relay.createChannel();
   */
  async createChannel(options: { info?: Uint8Array } = {}): Promise<GroupState> {
    const state = await this.groupClient.api.create({ kind: "channel", ...(options.info && { info: toBase64(options.info) }) });
    await this.groupClient.core.store.write([put("channelKeys", state.groupId, newChannelKey()), ...storeGroupOps(state)]);
    return state;
  }

  /**
   * An invite link to the channel: `relay://join/<token>#<key>`, the key in the fragment (never sent to the server).
   * @example
   * const link = await relay.channelInvite(channelId);
   */
  async channelInvite(channelId: string, options: { approval?: boolean } = {}): Promise<string> {
    const key = await this.groupClient.core.store.get("channelKeys", channelId);
    if (!key) throw new Error(`this device has no key for channel ${channelId}`);
    const { token } = await this.createInvite(channelId, options);
    return inviteLink(token, key);
  }

  /**
   * Subscribes to a channel with an invite link from {@link channelInvite} (keeps its key on this device).
   * @example
   * await relay.subscribe("relay://join/…#…");
   */
  subscribe(link: string): Promise<JoinResponse> {
    if (!parseInviteLink(link).key) throw new TypeError("a channel link carries the channel key after '#'");
    return this.joinByInvite(link);
  }

  /**
   * Posts to a channel (admins): sealed with the channel key, signed with this device's identity key. Resolves
   * with the client id once stored locally; a `groupStatus` event says `sent`.
   * @example
   * const id = await relay.post(channelId, "news");
   */
  async post(channelId: string, content: SendContent): Promise<string> {
    if (!(await this.groupClient.core.store.get("channelKeys", channelId))) throw new Error(`this device has no key for channel ${channelId}`);
    return this.groupClient.outbox.enqueueSend(channelId, contentBody(content));
  }

  /**
   * Reads the channel's new posts from its log (checking each signature against the posting device's identity key
   * and skipping, with a `GroupMessageError` event, any that does not verify), then returns its local posts, oldest first.
   * @example
   * for (const post of await relay.readChannel(channelId)) show(post);
   */
  async readChannel(channelId: string, query: GroupHistoryQuery = {}): Promise<GroupMessageRecord[]> {
    await this.groupClient.reader.read(channelId);
    return (await this.groupHistory(channelId, query)).filter((e): e is GroupMessageRecord => e.kind === "message");
  }
}
