/** Group sends: one stored copy, acknowledged before fan-out, then exactly once and in order to every member device. */
import { abortAllDurableObjects } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { GroupInboxEnvelope } from "../../../src/protocol/frames";
import type { GroupLogPage } from "../../../src/protocol/groups";
import { api, body, connect, registerUser } from "../support/relay";
import { aliceBobCarol, createGroup, fannedOut, groupInbox, groupRows, groupSeqsOf, groupState, receiveUntil } from "./support";

const rowsWithId = async (groupId: string, id: string) => (await groupRows(groupId)).log.filter((r) => r.client_id === id);

describe("sending to a group", () => {
  it("acknowledges with the group sequence, then copies the message once into every member device but the sending one", async () => {
    const { alice, alice2, bob, bob2, carol, group } = await aliceBobCarol();
    expect(group).toMatchObject({ epoch: 1, seq: 1, fanout: "write", memberCount: 3, you: { role: "admin" } });

    const { socket: a } = await connect(alice);
    const sent = await a.request({ type: "group_send", id: "m1", group: group.groupId, epoch: 1, body: body("sk-ciphertext") });
    expect(sent).toMatchObject({ type: "sent", id: "m1", groupSeq: 2 });

    for (const device of [alice2, bob, bob2, carol]) {
      const { socket } = await connect(device);
      const entries = await receiveUntil(socket, 2);
      expect(entries.map((e) => [e.kind, e.groupSeq])).toEqual([
        ["group_event", 1],
        ["group_message", 2],
      ]);
      expect(entries[1]).toMatchObject({ from: alice.session.userId, fromDevice: 1, id: "m1", epoch: 1, body: body("sk-ciphertext") });
      socket.close();
    }
    // The sending device gets only the creation event; its own message is not copied back to it.
    expect((await groupInbox(alice)).map((e) => e.groupSeq)).toEqual([1]);
    // One row in the group's log, no per-member copy left owed.
    const rows = await groupRows(group.groupId);
    expect(rows.log.filter((r) => r.kind === "message")).toHaveLength(1);
    expect(rows.fanout).toEqual([]);
  });

  it("stores a retried send once and answers it with the first sequence", async () => {
    const alice = await registerUser();
    const bob = await registerUser();
    const group = await createGroup(alice, [bob]);
    const { socket: a } = await connect(alice);
    const frame = { type: "group_send" as const, id: "retry-1", group: group.groupId, epoch: 1, body: body("once") };
    const first = await a.request(frame);
    const again = await a.request(frame);
    expect(again).toEqual(first);
    await fannedOut(group.groupId);
    expect((await groupInbox(bob)).filter((e) => e.kind === "group_message")).toHaveLength(1);
    const { socket: b } = await connect(bob);
    const entries = await receiveUntil(b, 2);
    expect(entries.filter((e) => e.kind === "group_message")).toHaveLength(1);
  });

  it("keeps group order in every inbox across many sends from several members", async () => {
    const alice = await registerUser();
    const bob = await registerUser();
    const carol = await registerUser();
    const group = await createGroup(alice, [bob, carol]);
    const { socket: a } = await connect(alice);
    const { socket: b } = await connect(bob);
    await receiveUntil(b, 1);
    const answers = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        (i % 2 === 0 ? a : b).request({ type: "group_send", id: `o${i}`, group: group.groupId, epoch: 1, body: body(`m${i}`) }),
      ),
    );
    const seqs = answers.map((x) => (x.type === "sent" ? x.groupSeq! : -1));
    expect(new Set(seqs).size).toBe(30);
    const { socket: c } = await connect(carol);
    const entries = await receiveUntil(c, Math.max(...seqs));
    const order = entries.map((e) => e.groupSeq);
    expect(order).toEqual([...order].sort((x, y) => x - y));
    expect(order).toEqual(Array.from({ length: 31 }, (_, i) => i + 1));
  });

  it("refuses a send for an old epoch with the current epoch and members, and stores nothing", async () => {
    const alice = await registerUser();
    const bob = await registerUser();
    const carol = await registerUser();
    const group = await createGroup(alice, [bob]);
    expect((await api("POST", `/v1/groups/${group.groupId}/members`, { token: alice.session.accessToken, body: { members: [carol.session.userId] } })).status).toBe(200);
    await fannedOut(group.groupId);
    const before = await groupRows(group.groupId);
    const { socket: a } = await connect(alice);
    const refused = await a.request({ type: "group_send", id: "s1", group: group.groupId, epoch: 1, body: body("for epoch 1") });
    expect(refused).toMatchObject({ type: "error", id: "s1", code: "stale_epoch", group: { groupId: group.groupId, epoch: 2 } });
    expect(refused.type === "error" && [...refused.group!.members].sort()).toEqual([alice, bob, carol].map((d) => d.session.userId).sort());
    expect(await groupRows(group.groupId)).toEqual(before);
    // The same id, retried for the current epoch, goes through.
    expect(await a.request({ type: "group_send", id: "s1", group: group.groupId, epoch: 2, body: body("for epoch 2") })).toMatchObject({ type: "sent", groupSeq: 3 });
  });

  it("a removed member receives nothing sent after the removal; a new member nothing sent before joining", async () => {
    const alice = await registerUser();
    const bob = await registerUser();
    const dave = await registerUser();
    const group = await createGroup(alice, [bob]);
    const { socket: a } = await connect(alice);
    expect(await a.request({ type: "group_send", id: "before", group: group.groupId, epoch: 1, body: body("before") })).toMatchObject({ groupSeq: 2 });
    expect((await api("DELETE", `/v1/groups/${group.groupId}/members/${bob.session.userId}`, { token: alice.session.accessToken })).status).toBe(204);
    expect((await api("POST", `/v1/groups/${group.groupId}/members`, { token: alice.session.accessToken, body: { members: [dave.session.userId] } })).status).toBe(200);
    const { epoch } = await groupState(alice, group.groupId);
    expect(epoch).toBe(3);
    expect(await a.request({ type: "group_send", id: "after", group: group.groupId, epoch, body: body("after") })).toMatchObject({ groupSeq: 5 });

    const { socket: b } = await connect(bob);
    const bobs = await receiveUntil(b, 3);
    expect(bobs.map((e) => e.groupSeq)).toEqual([1, 2, 3]);
    expect(bobs[2]).toMatchObject({ kind: "group_event", epoch: 2, event: { type: "removed", by: alice.session.userId, userId: bob.session.userId } });
    const { socket: d } = await connect(dave);
    const daves = await receiveUntil(d, 5);
    expect(daves.map((e) => e.groupSeq)).toEqual([4, 5]);
    // Let both finish draining what the server owes them, then check nothing else arrived.
    const groupsOf = async (x: typeof bob) => (await groupInbox(x)).map((e) => e.groupSeq);
    expect(await groupsOf(bob)).toEqual([]); // all acknowledged; seq 5 never stored for bob
    expect(await groupsOf(dave)).toEqual([]);
    expect((await groupRows(group.groupId)).fanout).toEqual([]);
    // History by cursor follows the same rule.
    const history = await api("GET", `/v1/groups/${group.groupId}/messages?after=0`, { token: dave.session.accessToken });
    expect((history.json as GroupLogPage).entries.map((e) => e.groupSeq)).toEqual([4, 5]);
    expect((await api("GET", `/v1/groups/${group.groupId}/messages?after=0`, { token: bob.session.accessToken })).status).toBe(404);
    expect(b.frames.filter((f) => f.type === "deliver").flatMap((f) => (f as { envelopes: GroupInboxEnvelope[] }).envelopes).some((e) => e.groupSeq === 5)).toBe(false);
  });

  it("a send whose ack was lost with its connection is stored once when retried on a new one, with the same groupSeq", async () => {
    const alice = await registerUser();
    const bob = await registerUser();
    const group = await createGroup(alice, [bob]);
    const g = group.groupId;
    const frame = { type: "group_send" as const, id: "lost-ack", group: g, epoch: 1, body: body("once only") };
    const { socket: first } = await connect(alice);
    first.send(frame);
    first.close(); // the ack has nowhere to go
    for (let i = 0; i < 2_000 && (await rowsWithId(g, "lost-ack")).length === 0; i++);
    const [stored] = await rowsWithId(g, "lost-ack");
    expect(stored).toBeDefined();
    const { socket: second } = await connect(alice);
    expect(await second.request(frame)).toMatchObject({ type: "sent", id: "lost-ack", groupSeq: stored!.seq, ts: stored!.ts });
    // Retried again, for a newer epoch after a membership change: still the first answer, nothing new stored.
    expect(await second.request({ ...frame, epoch: 7 })).toMatchObject({ type: "sent", groupSeq: stored!.seq });
    await fannedOut(g);
    expect(await rowsWithId(g, "lost-ack")).toHaveLength(1);
    expect(await groupSeqsOf(bob)).toEqual([1, stored!.seq]);
  });

  it("a send retried after every object was aborted is answered with its first sequence and stored once", async () => {
    const alice = await registerUser();
    const bob = await registerUser();
    const group = await createGroup(alice, [bob]);
    const g = group.groupId;
    const frame = { type: "group_send" as const, id: "abort-retry", group: g, epoch: 1, body: body("x") };
    const { socket: a } = await connect(alice);
    const first = await a.request(frame);
    expect(first).toMatchObject({ type: "sent", groupSeq: 2 });
    await abortAllDurableObjects();
    const { socket: again } = await connect(alice);
    expect(await again.request(frame)).toEqual(first);
    expect(await again.request({ ...frame, id: "next" })).toMatchObject({ type: "sent", groupSeq: 3 });
    await fannedOut(g);
    expect(await rowsWithId(g, "abort-retry")).toHaveLength(1);
    expect(await groupSeqsOf(bob)).toEqual([1, 2, 3]);
  });

  it("the frame speaks for the socket's device only: a forged sender field is ignored", async () => {
    const alice = await registerUser();
    const bob = await registerUser();
    const group = await createGroup(alice, [bob]);
    const { socket: a } = await connect(alice);
    expect(await a.request({ type: "group_send", id: "who", group: group.groupId, epoch: 1, body: body("x"), from: bob.session.userId, fromDevice: 9 } as never)).toMatchObject({ type: "sent" });
    const { socket: b } = await connect(bob);
    const entries = await receiveUntil(b, 2);
    expect(entries[1]).toMatchObject({ kind: "group_message", from: alice.session.userId, fromDevice: alice.session.deviceId });
  });
});
