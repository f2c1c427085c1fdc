/** Membership: every change bumps the epoch and is one ordered, durable event that every member sees. */
import { describe, expect, it } from "vitest";
import type { GroupEventEnvelope, GroupReceiptList, GroupState, JoinRequest } from "../../../src/protocol/groups";
import { LIMITS } from "../../../src/protocol/limits";
import { api, body, connect, registerUser } from "../support/relay";
import { createGroup, fannedOut, groupState, receiveUntil } from "./support";

describe("group membership", () => {
  it("adds, promotes, demotes, removes and leaves: each change is the next event, with the next epoch, in every member's inbox", async () => {
    const alice = await registerUser();
    const bob = await registerUser();
    const carol = await registerUser();
    const group = await createGroup(alice, [bob], { info: btoa("encrypted title") });
    const g = group.groupId;
    const as = (d: typeof alice) => ({ token: d.session.accessToken });
    expect((await api("POST", `/v1/groups/${g}/members`, { ...as(alice), body: { members: [carol.session.userId] } })).status).toBe(200);
    expect((await api("PUT", `/v1/groups/${g}/members/${bob.session.userId}/role`, { ...as(alice), body: { role: "admin" } })).status).toBe(200);
    expect((await api("PUT", `/v1/groups/${g}/info`, { ...as(bob), body: { info: btoa("new title") } })).status).toBe(200);
    expect((await api("PUT", `/v1/groups/${g}/members/${alice.session.userId}/role`, { ...as(bob), body: { role: "member" } })).status).toBe(200);
    expect((await api("DELETE", `/v1/groups/${g}/members/${carol.session.userId}`, { ...as(bob) })).status).toBe(204);
    expect((await api("DELETE", `/v1/groups/${g}/members/${bob.session.userId}`, { ...as(bob) })).status).toBe(204); // leaves
    // The last admin left: the longest-standing member (Alice) is promoted.
    const state = await groupState(alice, g);
    expect(state).toMatchObject({ epoch: 7, seq: 8, info: btoa("new title"), memberCount: 1, you: { role: "admin" } });

    const expected = [
      [1, 1, "created"],
      [2, 2, "added"],
      [3, 3, "role"],
      [4, 3, "info"],
      [5, 4, "role"],
      [6, 5, "removed"],
      [7, 6, "left"],
      [8, 7, "role"],
    ];
    const { socket: a } = await connect(alice);
    const events = (await receiveUntil(a, 8)) as GroupEventEnvelope[];
    expect(events.map((e) => [e.groupSeq, e.epoch, e.event.type])).toEqual(expected);
    expect(events[7]!.event).toEqual({ type: "role", by: alice.session.userId, userId: alice.session.userId, role: "admin" });
    // Carol saw everything up to her removal; Bob up to his leaving; neither later ones.
    const { socket: c } = await connect(carol);
    expect(((await receiveUntil(c, 6)) as GroupEventEnvelope[]).map((e) => e.groupSeq)).toEqual([2, 3, 4, 5, 6]);
    const { socket: b } = await connect(bob);
    expect(((await receiveUntil(b, 7)) as GroupEventEnvelope[]).map((e) => e.groupSeq)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    await fannedOut(g);
    expect((await api("GET", "/v1/groups", { ...as(bob) })).json).toEqual({ groups: [] });
    expect((await api("GET", "/v1/groups", { ...as(alice) })).json).toEqual({ groups: [{ groupId: g, kind: "group", fanout: "write" }] });
  });

  it("joins by invite link at once, or after an admin approves; revoked links stop working", async () => {
    const admin = await registerUser();
    const open = await registerUser();
    const asking = await registerUser();
    const denied = await registerUser();
    const group = await createGroup(admin, []);
    const g = group.groupId;
    const invite = async (approval: boolean) =>
      ((await api("POST", `/v1/groups/${g}/invites`, { token: admin.session.accessToken, body: { approval } })).json as { token: string }).token;
    const free = await invite(false);
    const gated = await invite(true);
    const joined = await api("POST", "/v1/groups/join", { token: open.session.accessToken, body: { token: free } });
    expect(joined.status).toBe(200);
    expect(joined.json).toMatchObject({ joined: true, group: { groupId: g, epoch: 2, you: { role: "member", since: 2 } } });
    for (const d of [asking, denied]) {
      expect(await api("POST", "/v1/groups/join", { token: d.session.accessToken, body: { token: gated } })).toMatchObject({ status: 202, json: { joined: false, pending: true } });
    }
    expect((await api("GET", `/v1/groups/${g}`, { token: asking.session.accessToken })).status).toBe(404);
    const requests = (await api("GET", `/v1/groups/${g}/requests`, { token: admin.session.accessToken })).json as { requests: JoinRequest[] };
    expect(requests.requests.map((r) => r.userId).sort()).toEqual([asking.session.userId, denied.session.userId].sort());
    expect((await api("POST", `/v1/groups/${g}/requests/${asking.session.userId}`, { token: admin.session.accessToken, body: { approve: true } })).status).toBe(204);
    expect((await api("POST", `/v1/groups/${g}/requests/${denied.session.userId}`, { token: admin.session.accessToken, body: { approve: false } })).status).toBe(204);
    expect(await groupState(asking, g)).toMatchObject({ epoch: 3, memberCount: 3 });
    expect((await api("GET", `/v1/groups/${g}`, { token: denied.session.accessToken })).status).toBe(404);
    const { socket } = await connect(admin);
    const events = (await receiveUntil(socket, 3)) as GroupEventEnvelope[];
    expect(events.map((e) => e.event)).toEqual([
      expect.objectContaining({ type: "created" }),
      { type: "joined", userId: open.session.userId },
      { type: "joined", userId: asking.session.userId, approvedBy: admin.session.userId },
    ]);
    expect((await api("DELETE", `/v1/groups/${g}/invites/${free}`, { token: admin.session.accessToken })).status).toBe(204);
    expect((await api("POST", "/v1/groups/join", { token: denied.session.accessToken, body: { token: free } })).status).toBe(404);
  });

  it(`past ${LIMITS.maxFanoutOnWrite} members a group is read from its log: members get notices and read by cursor`, { timeout: 60_000 }, async () => {
    const admin = await registerUser();
    const member = await registerUser();
    const group = await createGroup(admin, [member]);
    const g = group.groupId;
    // Members beyond the threshold: accounts added through the route in one call (they never connect).
    const extra = Array.from({ length: LIMITS.maxFanoutOnWrite - 1 }, () => crypto.randomUUID());
    const { env } = await import("cloudflare:workers");
    await env.DB.batch(extra.map((id, i) => env.DB.prepare("INSERT INTO accounts (user_id, phone, created_at) VALUES (?, ?, 0)").bind(id, `+1888${String(i).padStart(7, "0")}`)));
    const grown = await api("POST", `/v1/groups/${g}/members`, { token: admin.session.accessToken, body: { members: extra } });
    expect(grown.json as GroupState).toMatchObject({ memberCount: LIMITS.maxFanoutOnWrite + 1, fanout: "read", epoch: 2 });
    await fannedOut(g);
    const { socket: m } = await connect(member);
    // The creation came through the inbox; the change that switched the group to its log is read from the log.
    expect((await receiveUntil(m, 1)).map((e) => e.groupSeq)).toEqual([1]);
    expect(await m.next("group_notice")).toEqual({ type: "group_notice", group: g, upTo: 2 });
    const { socket: a } = await connect(admin);
    expect(await a.request({ type: "group_send", id: "big", group: g, epoch: 2, body: body("to many") })).toMatchObject({ groupSeq: 3 });
    expect(await m.next("group_notice")).toMatchObject({ type: "group_notice", group: g, upTo: 3, entries: [{ groupSeq: 3, id: "big" }] });
    const page = await api("GET", `/v1/groups/${g}/messages?after=2`, { token: member.session.accessToken });
    expect(page.json).toMatchObject({ head: 3, entries: [{ kind: "group_message", groupSeq: 3, id: "big" }] });
    // Reading it counts as delivery for the sender.
    const receipts = (await api("GET", `/v1/groups/${g}/messages/3/receipts`, { token: admin.session.accessToken })).json as GroupReceiptList;
    expect(receipts).toMatchObject({ members: LIMITS.maxFanoutOnWrite, delivered: 1, read: 0, receipts: [{ userId: member.session.userId }] });
  });
});
