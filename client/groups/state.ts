/**
 * The local copy of each group's state: stored from the server's answers, kept current by group events (in group
 * order), and marked stale when a change cannot be applied locally, so that the next use fetches it again.
 */
import type { GroupEpoch, GroupEventEnvelope, GroupMember, GroupState } from "../../src/protocol/groups";
import { LIMITS } from "../../src/protocol/limits";
import { put, type RelayStore, type WriteOp } from "../store/types";
import type { GroupRecord, OwnSenderKeyRecord } from "./types";

/**
 * The stored state of `groupId`, if this device has one.
 * @example
 * const group = await loadGroup(store, groupId);
 */
export function loadGroup(store: RelayStore, groupId: string): Promise<GroupRecord | undefined> {
  return store.get("groups", groupId);
}

/**
 * The ops that store a fresh server answer as the group's state.
 * @example
 * await store.write(storeGroupOps(await api.get(groupId)));
 */
export function storeGroupOps(state: GroupState): WriteOp[] {
  return [put("groups", state.groupId, { ...state })];
}

function withMembers(record: GroupRecord, members: GroupMember[]): GroupRecord {
  return { ...record, members, memberCount: record.kind === "channel" ? record.memberCount : members.length };
}

/**
 * Whether a membership change since our sender key was made means it must not be used again: a member it went to
 * left or was removed (seen in `members`, the current member user ids).
 * @example
 * if (mustRotate(own, group.members.map((m) => m.userId), me)) own = newKey();
 */
export function mustRotate(own: OwnSenderKeyRecord, members: readonly string[], me: string): boolean {
  return own.rotate === true || own.sentTo.some((u) => u !== me && !members.includes(u));
}

/**
 * Applies a group event to the stored state (when there is one and the event is newer than it), and flags our
 * sender key for rotation when a member left or was removed after it was made. Returns the ops to write with the
 * event's history entry.
 * @example
 * const ops = await applyEventOps(store, me, envelope);
 */
export async function applyEventOps(store: RelayStore, me: string, entry: GroupEventEnvelope): Promise<WriteOp[]> {
  const ops: WriteOp[] = [];
  const event = entry.event;
  if (event.type === "removed" || event.type === "left") {
    const own = await store.get("groupSenderKeys", entry.group);
    if (own && entry.epoch > own.epoch && !own.rotate) ops.push(put("groupSenderKeys", entry.group, { ...own, rotate: true }));
  }
  let record = await loadGroup(store, entry.group);
  if (event.type === "created" && !record) {
    const you = event.members.find((m) => m.userId === me);
    if (!you) return ops;
    const fanout = event.kind === "channel" || event.members.length > LIMITS.maxFanoutOnWrite ? "read" : "write";
    record = { groupId: entry.group, kind: event.kind, epoch: entry.epoch, seq: entry.groupSeq, fanout, info: event.info, memberCount: event.members.length, members: event.members, you };
    return [...ops, put("groups", entry.group, record)];
  }
  if (!record || entry.groupSeq <= record.seq) return ops;
  const since = entry.groupSeq;
  let members = record.members;
  let stale = record.stale === true;
  let left = record.left === true;
  switch (event.type) {
    case "added":
      members = [...members, ...event.members.filter((u) => !members.some((m) => m.userId === u)).map((userId) => ({ userId, role: "member" as const, since }))];
      if (event.members.includes(me)) stale = true;
      break;
    case "joined":
      if (!members.some((m) => m.userId === event.userId)) members = [...members, { userId: event.userId, role: "member", since }];
      if (event.userId === me) stale = true;
      break;
    case "removed":
    case "left":
      members = members.filter((m) => m.userId !== event.userId);
      if (event.userId === me) left = true;
      break;
    case "role":
      members = members.map((m) => (m.userId === event.userId ? { ...m, role: event.role } : m));
      break;
    case "info":
      record = { ...record, info: event.info };
      break;
    case "created":
      break;
  }
  if (record.kind === "channel" && event.type !== "info" && event.type !== "role") stale = true; // a channel lists admins only
  const you = members.find((m) => m.userId === me) ?? record.you;
  const next: GroupRecord = { ...withMembers(record, members), epoch: Math.max(record.epoch, entry.epoch), seq: entry.groupSeq, you };
  if (stale) next.stale = true;
  if (left) next.left = true;
  return [...ops, put("groups", entry.group, next)];
}

/**
 * The ops for a stale-epoch refusal: the group's current epoch and members (marked stale, to be fetched again for
 * roles), and our sender key flagged for rotation if a member it went to is gone.
 * @example
 * await store.write(await staleEpochOps(store, me, answer.group));
 */
export async function staleEpochOps(store: RelayStore, me: string, current: GroupEpoch): Promise<WriteOp[]> {
  const ops: WriteOp[] = [];
  const record = await loadGroup(store, current.groupId);
  if (record) {
    const members = record.kind === "channel" ? record.members : current.members.map((userId) => record.members.find((m) => m.userId === userId) ?? { userId, role: "member" as const, since: 0 });
    ops.push(put("groups", current.groupId, { ...withMembers(record, members), epoch: current.epoch, stale: true }));
  }
  const own = await store.get("groupSenderKeys", current.groupId);
  if (own && record?.kind !== "channel" && mustRotate(own, current.members, me)) ops.push(put("groupSenderKeys", current.groupId, { ...own, rotate: true }));
  return ops;
}
