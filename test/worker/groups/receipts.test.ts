/** Group receipts are counted in the GroupDO and told to the sender only: no receipt storm. */
import { describe, expect, it } from "vitest";
import type { GroupReceiptList } from "../../../src/protocol/groups";
import { api, body, connect, registerUser } from "../support/relay";
import { aliceBobCarol, createGroup, fannedOut, groupRows, receiveUntil } from "./support";

describe("group receipts", () => {
  it("counts a member as delivered once (on the first device's ack) and read on group_read; only the sender hears", async () => {
    const { alice, bob, bob2, carol, group } = await aliceBobCarol();
    const g = group.groupId;
    await fannedOut(g);
    const { socket: a } = await connect(alice);
    expect(await a.request({ type: "group_send", id: "r1", group: g, epoch: 1, body: body("hi") })).toMatchObject({ groupSeq: 2 });

    const { socket: b } = await connect(bob);
    await receiveUntil(b, 2);
    expect(await a.next("group_receipts")).toEqual({ type: "group_receipts", group: g, counts: [{ groupSeq: 2, id: "r1", members: 2, delivered: 1, read: 0 }] });
    const { socket: b2 } = await connect(bob2);
    await receiveUntil(b2, 2); // Bob's second device: Bob is already counted
    const { socket: c } = await connect(carol);
    await receiveUntil(c, 2);
    expect(await a.next("group_receipts")).toMatchObject({ counts: [{ groupSeq: 2, delivered: 2, read: 0 }] });
    expect(await c.request({ type: "group_read", id: "read-1", group: g, seqs: [2] })).toMatchObject({ type: "sent", id: "read-1" });
    expect(await a.next("group_receipts")).toMatchObject({ counts: [{ groupSeq: 2, delivered: 2, read: 1 }] });
    // A repeated read changes nothing and tells nobody.
    expect(await c.request({ type: "group_read", id: "read-2", group: g, seqs: [2] })).toMatchObject({ type: "sent" });

    const list = (await api("GET", `/v1/groups/${g}/messages/2/receipts`, { token: alice.session.accessToken })).json as GroupReceiptList;
    expect(list).toMatchObject({ groupSeq: 2, id: "r1", members: 2, delivered: 2, read: 1 });
    expect(list.receipts.find((r) => r.userId === carol.session.userId)).toMatchObject({ deliveredAt: expect.any(Number), readAt: expect.any(Number) });
    expect(list.receipts.find((r) => r.userId === bob.session.userId)).toMatchObject({ deliveredAt: expect.any(Number), readAt: null });
    // Only the sender sees the list; members got no receipt frames or envelopes at all.
    expect((await api("GET", `/v1/groups/${g}/messages/2/receipts`, { token: bob.session.accessToken })).status).toBe(403);
    for (const socket of [b, b2, c]) {
      expect(socket.frames.filter((f) => f.type === "group_receipts")).toEqual([]);
      expect(socket.frames.filter((f) => f.type === "deliver").flatMap((f) => (f.type === "deliver" ? f.envelopes : [])).filter((e) => e.kind === "receipt")).toEqual([]);
    }
    expect(a.frames.filter((f) => f.type === "group_receipts")).toEqual([]);
  });

  it("drops read receipts of a member who turned them off", async () => {
    const alice = await registerUser();
    const bob = await registerUser();
    const group = await createGroup(alice, [bob]);
    expect((await api("PUT", "/v1/settings", { token: bob.session.accessToken, body: { readReceipts: false } })).status).toBe(200);
    const { socket: a } = await connect(alice);
    await a.request({ type: "group_send", id: "q", group: group.groupId, epoch: 1, body: body("x") });
    const { socket: b } = await connect(bob);
    await receiveUntil(b, 2);
    expect(await b.request({ type: "group_read", id: "rr", group: group.groupId, seqs: [2] })).toMatchObject({ type: "sent", dropped: true });
    const list = (await api("GET", `/v1/groups/${group.groupId}/messages/2/receipts`, { token: alice.session.accessToken })).json as GroupReceiptList;
    expect(list).toMatchObject({ read: 0 });
  });

  it("group_read counts only members' reads of messages they were sent; outsiders get an error frame and change nothing", async () => {
    const alice = await registerUser();
    const bob = await registerUser();
    const outsider = await registerUser();
    const late = await registerUser();
    const group = await createGroup(alice, [bob]);
    const g = group.groupId;
    const { socket: a } = await connect(alice);
    expect(await a.request({ type: "group_send", id: "early", group: g, epoch: 1, body: body("before late joined") })).toMatchObject({ groupSeq: 2 });
    expect((await api("POST", `/v1/groups/${g}/members`, { token: alice.session.accessToken, body: { members: [late.session.userId] } })).status).toBe(200);
    expect((await api("DELETE", `/v1/groups/${g}/members/${bob.session.userId}`, { token: alice.session.accessToken })).status).toBe(204);
    await fannedOut(g);
    const before = await groupRows(g);
    for (const [who, device, code] of [
      ["outsider", outsider, "not_found"],
      ["removed member", bob, "not_found"],
    ] as const) {
      const { socket } = await connect(device);
      expect(await socket.request({ type: "group_read", id: "peek", group: g, seqs: [2] }), who).toMatchObject({ type: "error", id: "peek", code });
      expect(await socket.request({ type: "group_read", id: "nogroup", group: crypto.randomUUID(), seqs: [2] }), who).toMatchObject({ type: "error", code: "not_found" });
      socket.close();
    }
    // A member who joined after the message never received it: a read of it counts for nothing.
    const { socket: l } = await connect(late);
    expect(await l.request({ type: "group_read", id: "not-mine", group: g, seqs: [2] })).toMatchObject({ type: "sent" });
    expect(await groupRows(g)).toEqual(before);
    expect(a.frames.filter((f) => f.type === "group_receipts")).toEqual([]);
    const list = (await api("GET", `/v1/groups/${g}/messages/2/receipts`, { token: alice.session.accessToken })).json as GroupReceiptList;
    expect(list).toMatchObject({ members: 1, delivered: 0, read: 0, receipts: [] });
  });
});
