/**
 * Groups and broadcast channels: HTTP bodies, group events and the envelopes and frames groups add.
 * One source of truth for the server (`src/http/groups.ts`, `durable-objects/group.ts`) and the SDK.
 *
 * A group's messages are sender-key ciphertexts (libsignal's `SenderKeyMessage`, type 7), stored once in
 * the GroupDO and, up to `LIMITS.maxFanoutOnWrite` members, copied into every member device's inbox
 * (fan-out on write). Channels, and groups past that size, keep one copy in the group's log; members
 * read it by cursor and get a live `group_notice` instead (fan-out on read).
 */
import * as z from "zod";
import { base64ByteLength, isBase64 } from "./base64";
import { clientIdSchema } from "./ids";
import { LIMITS } from "./limits";

export type GroupKind = "group" | "channel";
export type GroupRole = "admin" | "member";
/** How a group's messages reach members: copied into inboxes, or read from the group's log. */
export type FanoutMode = "write" | "read";

const userIdSchema = z.uuid();
const groupRoleSchema = z.enum(["admin", "member"]);

/** Standard padded base64 of at most `max` decoded bytes. */
const opaqueBlob = (what: string, max: number) =>
  z
    .string()
    .min(1)
    .refine(isBase64, `${what} must be standard padded base64`)
    .refine((s) => base64ByteLength(s) <= max, `${what} exceeds ${max} bytes`);

/** The group's title, description and avatar reference, encrypted by the clients: the server never reads it. */
export const groupInfoSchema = opaqueBlob("info", LIMITS.maxGroupInfoBytes);

const uniqueUsers = (max: number) =>
  z
    .array(userIdSchema)
    .max(max, `at most ${max} members`)
    .refine((ids) => new Set(ids).size === ids.length, "a member is listed twice");

export const createGroupSchema = z.object({
  kind: z.enum(["group", "channel"]).default("group"),
  /** Members besides the creator (who is the first admin). Channels start with admins only: subscribers join by invite. */
  members: uniqueUsers(LIMITS.maxGroupMembers - 1).default([]),
  info: groupInfoSchema.optional(),
});
export type CreateGroupBody = z.input<typeof createGroupSchema>;

export const addMembersSchema = z.object({ members: uniqueUsers(LIMITS.maxGroupMembers).min(1) });
export type AddMembersBody = z.infer<typeof addMembersSchema>;

export const setRoleSchema = z.object({ role: groupRoleSchema });
export type SetRoleBody = z.infer<typeof setRoleSchema>;

export const updateInfoSchema = z.object({ info: groupInfoSchema });
export type UpdateInfoBody = z.infer<typeof updateInfoSchema>;

export const createInviteSchema = z.object({ approval: z.boolean().default(false) });
export type CreateInviteBody = z.input<typeof createInviteSchema>;

/** Invite tokens name their group: `<group id>.<43 base64url characters>`. */
export const INVITE_TOKEN = /^([0-9a-f-]{36})\.([A-Za-z0-9_-]{43})$/;
export const joinSchema = z.object({ token: z.string().max(100).regex(INVITE_TOKEN, "malformed invite token") });
export type JoinBody = z.infer<typeof joinSchema>;

export const decideRequestSchema = z.object({ approve: z.boolean() });
export type DecideRequestBody = z.infer<typeof decideRequestSchema>;

export const readLogQuerySchema = z.object({
  after: z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER).default(0),
  limit: z.coerce.number().int().min(1).max(LIMITS.groupLogPageSize).default(LIMITS.groupLogPageSize),
});

export interface GroupMember {
  userId: string;
  role: GroupRole;
  /** The group sequence of the event that made them a member: they can read nothing before it. */
  since: number;
}

/** A group as `GET /v1/groups/:id` returns it to a member. */
export interface GroupState {
  groupId: string;
  kind: GroupKind;
  /** Bumped by every membership or role change; a group send names the epoch it was encrypted for. */
  epoch: number;
  /** The group's latest sequence (messages and events share it). */
  seq: number;
  fanout: FanoutMode;
  info: string | null;
  memberCount: number;
  /** Every member of a group; a channel lists its admins only (subscribers are `memberCount`). */
  members: GroupMember[];
  /** The caller's own membership. */
  you: GroupMember;
}

/** What `GET /v1/groups` lists: the caller's groups. */
export interface GroupMembership {
  groupId: string;
  kind: GroupKind;
  fanout: FanoutMode;
}

export interface InviteResponse {
  token: string;
  approval: boolean;
}

/** `POST /v1/groups/join`: joined at once, or waiting for an admin's approval. */
export type JoinResponse = { joined: true; group: GroupState } | { joined: false; pending: true };

export interface JoinRequest {
  userId: string;
  requestedAt: number;
}

/** A membership change, as every member sees it, in group order. */
export type GroupEvent =
  | { type: "created"; by: string; kind: GroupKind; members: GroupMember[]; info: string | null }
  | { type: "added"; by: string; members: string[] }
  | { type: "removed"; by: string; userId: string }
  | { type: "left"; userId: string }
  | { type: "joined"; userId: string; approvedBy?: string }
  | { type: "role"; by: string; userId: string; role: GroupRole }
  | { type: "info"; by: string; info: string };

/** A group message as the inbox or the log delivers it. */
export interface GroupMessage {
  kind: "group_message";
  group: string;
  groupSeq: number;
  epoch: number;
  from: string;
  fromDevice: number;
  /** The sender's client message id. */
  id: string;
  ts: number;
  /** libsignal's `SenderKeyMessage` (type 7) in a group; an AES-GCM sealed post in a channel. */
  body: string;
  /** Channels: the posting device's XEdDSA signature over `channelPostSignedBytes(...)`. */
  signature?: string;
}

/** A membership change as the inbox or the log delivers it. */
export interface GroupEventEnvelope {
  kind: "group_event";
  group: string;
  groupSeq: number;
  /** The epoch after the change. */
  epoch: number;
  ts: number;
  event: GroupEvent;
}

export type GroupLogEntry = GroupMessage | GroupEventEnvelope;

/** `GET /v1/groups/:id/messages?after=N`: entries after N the caller may read, in order. */
export interface GroupLogPage {
  entries: GroupLogEntry[];
  /** The group's latest sequence; more to read while the last entry's `groupSeq` is below it. */
  head: number;
}

/** Aggregated receipts of one group message. */
export interface GroupReceiptCounts {
  groupSeq: number;
  /** The sender's client message id. */
  id: string;
  /** Members the message was sent to (everyone but the sender, when sent). */
  members: number;
  delivered: number;
  read: number;
}

/** `GET /v1/groups/:id/messages/:seq/receipts`, for the message's sender only. */
export interface GroupReceiptList extends GroupReceiptCounts {
  receipts: { userId: string; deliveredAt: number | null; readAt: number | null }[];
}

// ---- WebSocket frames ----

const maxBodyChars = Math.ceil(LIMITS.maxEnvelopeBytes / 3) * 4;

/** Send one ciphertext to a group, encrypted for the membership `epoch`. */
export const groupSendFrameSchema = z.object({
  type: z.literal("group_send"),
  id: clientIdSchema,
  group: z.uuid(),
  epoch: z.number().int().min(1),
  body: z
    .string()
    .min(1)
    .max(maxBodyChars, `body exceeds ${LIMITS.maxEnvelopeBytes} bytes`)
    .refine(isBase64, "body must be standard padded base64"),
  /** Required in channels: XEdDSA by the sending device's identity key (64 bytes, base64). */
  signature: z.string().length(88).refine(isBase64, "signature must be standard padded base64").optional(),
});
export type GroupSendFrame = z.infer<typeof groupSendFrameSchema>;

/** Tell the group these of its messages were read by this user. */
export const groupReadFrameSchema = z.object({
  type: z.literal("group_read"),
  id: clientIdSchema,
  group: z.uuid(),
  seqs: z.array(z.number().int().min(1)).min(1).max(LIMITS.maxReceiptRefs),
});
export type GroupReadFrame = z.infer<typeof groupReadFrameSchema>;

/** The current membership, sent with a `stale_epoch` refusal so the client can rotate keys and retry. */
export interface GroupEpoch {
  groupId: string;
  epoch: number;
  members: string[];
}

/** Bytes a channel post's signature covers: the post's identity and its body, never its server sequence. */
export function channelPostSignedBytes(post: { group: string; from: string; fromDevice: number; id: string }, body: Uint8Array): Uint8Array {
  const head = new TextEncoder().encode(`relay-channel-post\u0000${post.group}\u0000${post.from}\u0000${post.fromDevice}\u0000${post.id}\u0000`);
  const out = new Uint8Array(head.length + body.length);
  out.set(head);
  out.set(body, head.length);
  return out;
}
