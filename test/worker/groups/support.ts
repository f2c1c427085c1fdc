/** Group fixtures through the public API, and read-only views of a GroupDO's and a UserDO's SQLite. */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect } from "vitest";
import type { GroupInboxEnvelope } from "../../../src/protocol/frames";
import type { CreateGroupBody, GroupState } from "../../../src/protocol/groups";
import { api, linkDevice, registerUser, type TestDevice, type TestSocket } from "../support/relay";

export const groupStub = (groupId: string) => env.GROUP.get(env.GROUP.idFromName(groupId));
export const userStub = (d: TestDevice) => env.USER.get(env.USER.idFromName(d.session.userId));

export async function createGroup(admin: TestDevice, members: TestDevice[], extra: Partial<CreateGroupBody> = {}): Promise<GroupState> {
  const res = await api("POST", "/v1/groups", {
    token: admin.session.accessToken,
    body: { members: members.map((m) => m.session.userId), ...extra },
  });
  expect(res.status, JSON.stringify(res.json)).toBe(201);
  return res.json as GroupState;
}

export async function groupState(device: TestDevice, groupId: string): Promise<GroupState> {
  const res = await api("GET", `/v1/groups/${groupId}`, { token: device.session.accessToken });
  expect(res.status, JSON.stringify(res.json)).toBe(200);
  return res.json as GroupState;
}

/** Everything a GroupDO stores, for asserting that a refused request changed nothing. */
export async function groupRows(groupId: string) {
  return runInDurableObject(groupStub(groupId), (_obj, state) => {
    const all = (table: string) => state.storage.sql.exec(`SELECT * FROM ${table}`).toArray();
    return {
      meta: all("meta"),
      members: all("members"),
      log: all("log"),
      fanout: all("fanout"),
      invites: all("invites"),
      requests: all("join_requests"),
      receipts: all("receipts"),
    };
  });
}

/** Group entries in a user's inbox, per device. */
export async function groupInbox(d: TestDevice) {
  return runInDurableObject(userStub(d), (_obj, state) =>
    state.storage.sql
      .exec<{ device_id: number; seq: number; envelope: string }>("SELECT device_id, seq, envelope FROM inbox ORDER BY device_id, seq")
      .toArray()
      .map((r) => ({ device: r.device_id, seq: r.seq, ...(JSON.parse(r.envelope) as Omit<GroupInboxEnvelope, "seq">) }))
      .filter((e) => e.kind === "group_message" || e.kind === "group_event"),
  );
}

/** Receives group entries on a socket until one with `groupSeq` arrives; returns them all, acknowledged. */
export async function receiveUntil(socket: TestSocket, groupSeq: number): Promise<GroupInboxEnvelope[]> {
  const got: GroupInboxEnvelope[] = [];
  while (!got.some((e) => e.groupSeq === groupSeq)) got.push(...((await socket.receive(1)) as GroupInboxEnvelope[]));
  return got;
}

/**
 * Waits until the group owes no member a copy: joins the object's fan-out pass (starting one if none runs) and awaits
 * it, a bounded number of times (a pass that met a failing member leaves rows for the next one).
 */
export async function fannedOut(groupId: string, { passes = 20 } = {}): Promise<void> {
  for (let i = 0; i < passes; i++) {
    await runInDurableObject(groupStub(groupId), (instance) => (instance as unknown as { fanout: { kick: () => Promise<void> } }).fanout.kick());
    if ((await owedCount(groupId)) === 0) return;
  }
  throw new Error("fan-out did not finish");
}

/** Entries the group still owes its members (rows of its durable fan-out outbox). */
export async function owedCount(groupId: string): Promise<number> {
  return runInDurableObject(groupStub(groupId), (_obj, state) => state.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM fanout").one().n);
}

/** Every envelope stored for each of a user's devices (all kinds), oldest first. */
export async function inboxRows(d: TestDevice): Promise<{ device: number; seq: number; kind: string; groupSeq?: number; id?: string }[]> {
  return runInDurableObject(userStub(d), (_obj, state) =>
    state.storage.sql
      .exec<{ device_id: number; seq: number; envelope: string }>("SELECT device_id, seq, envelope FROM inbox ORDER BY device_id, seq")
      .toArray()
      .map((r) => {
        const e = JSON.parse(r.envelope) as { kind: string; groupSeq?: number; id?: string };
        return { device: r.device_id, seq: r.seq, kind: e.kind, ...(e.groupSeq !== undefined && { groupSeq: e.groupSeq }), ...(e.id !== undefined && { id: e.id }) };
      }),
  );
}

/** The group sequences stored for one device of a user, in inbox order. */
export async function groupSeqsOf(d: TestDevice, device = d.session.deviceId): Promise<number[]> {
  return (await inboxRows(d)).filter((r) => r.device === device && r.groupSeq !== undefined).map((r) => r.groupSeq!);
}

/**
 * The usual cast: Alice (admin) and Bob with two devices each, Carol with one, and their group, created by Alice.
 * The group state is as `POST /v1/groups` returned it.
 */
export async function aliceBobCarol() {
  const alice = await registerUser();
  const alice2 = await linkDevice(alice);
  const bob = await registerUser();
  const bob2 = await linkDevice(bob);
  const carol = await registerUser();
  const group = await createGroup(alice, [bob, carol]);
  return { alice, alice2, bob, bob2, carol, group };
}
