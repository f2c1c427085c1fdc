/** Store, then acknowledge, then fan out: a crash anywhere after the ack loses nothing and duplicates nothing. */
import { abortAllDurableObjects, evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { api, body, connect, registerUser } from "../support/relay";
import { aliceBobCarol, createGroup, fannedOut, groupInbox, groupRows, groupSeqsOf, groupStub, receiveUntil } from "./support";

type FanoutInternals = { handOver: (userId: string, items: unknown[]) => Promise<void> };
const fanoutOf = (instance: unknown) => (instance as { fanout: FanoutInternals }).fanout;

/** The live GroupDO's hand-overs to `userId` never answer (`times` of them; the rest go through). */
async function hangHandOver(groupId: string, userId: string, times = Infinity): Promise<void> {
  await runInDurableObject(groupStub(groupId), (instance) => {
    const fanout = fanoutOf(instance);
    const real = fanout.handOver;
    let hung = 0;
    fanout.handOver = (to, items) => (to === userId && hung++ < times ? new Promise<void>(() => {}) : real(to, items));
  });
}

/** Polls (bounded) until `condition` holds. */
async function until(condition: () => Promise<boolean>, what: string, polls = 5_000): Promise<void> {
  for (let i = 0; i < polls; i++) if (await condition()) return;
  throw new Error(`never happened: ${what}`);
}

const owedTo = async (groupId: string) => (await groupRows(groupId)).fanout.map((r) => `${String(r.user_id)}:${String(r.seq)}`);

/** Makes the live GroupDO instance "die" right after acknowledging: its fan-out never starts in this life. */
async function stallFanout(groupId: string): Promise<void> {
  await runInDurableObject(groupStub(groupId), (instance) => {
    (instance as unknown as { fanout: { kick: () => Promise<void> } }).fanout.kick = () => Promise.resolve();
  });
}

describe("fan-out durability", () => {
  it("a message acknowledged before the GroupDO was evicted reaches every member device exactly once, in order", async () => {
    const { alice, bob, bob2, carol, group } = await aliceBobCarol();
    await fannedOut(group.groupId);
    await stallFanout(group.groupId);

    const { socket: a } = await connect(alice);
    const acked = [];
    for (let i = 0; i < 3; i++) acked.push(await a.request({ type: "group_send", id: `e${i}`, group: group.groupId, epoch: 1, body: body(`m${i}`) }));
    expect(acked.map((x) => x.type === "sent" && x.groupSeq)).toEqual([2, 3, 4]);
    // Acknowledged and owed to all three members (the sender's object too, for its other devices), delivered to none.
    expect((await groupRows(group.groupId)).fanout).toHaveLength(9);
    expect((await groupInbox(carol)).map((e) => e.groupSeq)).toEqual([1]);

    await evictDurableObject(groupStub(group.groupId));
    expect(await runDurableObjectAlarm(groupStub(group.groupId))).toBe(true);
    await fannedOut(group.groupId);

    for (const device of [bob, bob2, carol]) {
      const { socket } = await connect(device);
      const entries = await receiveUntil(socket, 4);
      expect(entries.map((e) => e.groupSeq)).toEqual([1, 2, 3, 4]);
      socket.close();
    }
  });

  it("a hand-over whose answer was lost is repeated, and the member's inbox still holds one copy", async () => {
    const alice = await registerUser();
    const bob = await registerUser();
    const group = await createGroup(alice, [bob]);
    const { socket: a } = await connect(alice);
    expect(await a.request({ type: "group_send", id: "lost", group: group.groupId, epoch: 1, body: body("once") })).toMatchObject({ groupSeq: 2 });
    await fannedOut(group.groupId);
    // The copy landed, but the group never heard back: the row is still owed when the object restarts.
    await runInDurableObject(groupStub(group.groupId), (_obj, state) => {
      state.storage.sql.exec("INSERT INTO fanout (user_id, seq, store, membership) VALUES (?, 2, 1, NULL)", bob.session.userId);
      void state.storage.setAlarm(Date.now() + 60_000);
    });
    await abortAllDurableObjects();
    expect(await runDurableObjectAlarm(groupStub(group.groupId))).toBe(true);
    await fannedOut(group.groupId);
    expect((await groupInbox(bob)).map((e) => [e.kind, e.groupSeq])).toEqual([
      ["group_event", 1],
      ["group_message", 2],
    ]);
  });

  it("a member whose object fails is retried by the alarm while the others get the message at once", async () => {
    const alice = await registerUser();
    const bob = await registerUser();
    const carol = await registerUser();
    const group = await createGroup(alice, [bob, carol]);
    await fannedOut(group.groupId);
    // Carol's object refuses the hand-over once (a transient failure), then recovers.
    await runInDurableObject(groupStub(group.groupId), (instance) => {
      const fanout = (instance as unknown as { fanout: { handOver: (u: string, items: unknown[]) => Promise<void> } }).fanout;
      const real = fanout.handOver;
      let failed = false;
      fanout.handOver = (userId, items) => {
        if (userId === carol.session.userId && !failed) {
          failed = true;
          return Promise.reject(new Error("carol's object is unavailable"));
        }
        return real(userId, items);
      };
    });
    const { socket: a } = await connect(alice);
    expect(await a.request({ type: "group_send", id: "r1", group: group.groupId, epoch: 1, body: body("hi") })).toMatchObject({ groupSeq: 2 });
    const { socket: b } = await connect(bob);
    await receiveUntil(b, 2);
    const owed = async () => (await groupRows(group.groupId)).fanout.map((r) => r.user_id);
    for (let i = 0; i < 200 && (await owed()).length > 1; i++);
    expect(await owed()).toEqual([carol.session.userId]);
    expect(await runDurableObjectAlarm(groupStub(group.groupId))).toBe(true);
    await fannedOut(group.groupId);
    expect((await groupInbox(carol)).map((e) => e.groupSeq)).toEqual([1, 2]);
  });

  it("objects aborted after the ack, with one member's copy still in flight: every device gets each message once, in group order", async () => {
    const { alice, alice2, bob, bob2, carol, group } = await aliceBobCarol();
    const g = group.groupId;
    await fannedOut(g);
    await hangHandOver(g, bob.session.userId);

    const { socket: a } = await connect(alice);
    const acks = [];
    for (let i = 0; i < 3; i++) acks.push(await a.request({ type: "group_send", id: `f${i}`, group: g, epoch: 1, body: body(`m${i}`) }));
    expect(acks.map((x) => x.type === "sent" && x.groupSeq)).toEqual([2, 3, 4]);
    // Bob's hand-over never answers, and holds up nobody else: Carol and Alice's other device get all three
    // messages meanwhile. Bob's copy is still in flight when everything dies.
    await until(async () => (await owedTo(g)).every((owed) => owed.startsWith(`${bob.session.userId}:`)), "everyone but bob got every message");
    expect(await groupSeqsOf(carol)).toEqual([1, 2, 3, 4]);
    expect(await groupSeqsOf(alice2)).toEqual([1, 2, 3, 4]);
    expect(await groupSeqsOf(bob)).toEqual([1]);
    await abortAllDurableObjects();

    expect(await runDurableObjectAlarm(groupStub(g))).toBe(true);
    await fannedOut(g);
    expect(await groupSeqsOf(alice)).toEqual([1]); // the sending device gets no copy of its own messages
    for (const [who, device] of [["alice's other device", alice2], ["bob", bob], ["bob's second device", bob2], ["carol", carol]] as const) {
      expect(await groupSeqsOf(device), who).toEqual([1, 2, 3, 4]);
    }
    expect((await groupRows(g)).fanout).toEqual([]);
    expect((await groupRows(g)).log.filter((r) => r.kind === "message")).toHaveLength(3);
    const { socket: b2 } = await connect(bob2);
    expect((await receiveUntil(b2, 4)).map((e) => [e.groupSeq, e.kind === "group_message" ? e.id : e.event.type])).toEqual([
      [1, "created"],
      [2, "f0"],
      [3, "f1"],
      [4, "f2"],
    ]);
  });

  it("membership changes made while fan-out is stalled keep their order and their boundaries when it resumes", async () => {
    const alice = await registerUser();
    const bob = await registerUser();
    const carol = await registerUser();
    const dave = await registerUser();
    const group = await createGroup(alice, [bob, carol]);
    const g = group.groupId;
    await fannedOut(g);
    await stallFanout(g);
    const { socket: a } = await connect(alice);
    expect(await a.request({ type: "group_send", id: "s1", group: g, epoch: 1, body: body("carol may read this") })).toMatchObject({ groupSeq: 2 });
    expect((await api("DELETE", `/v1/groups/${g}/members/${carol.session.userId}`, { token: alice.session.accessToken })).status).toBe(204);
    expect((await api("POST", `/v1/groups/${g}/members`, { token: alice.session.accessToken, body: { members: [dave.session.userId] } })).status).toBe(200);
    expect(await a.request({ type: "group_send", id: "s2", group: g, epoch: 3, body: body("dave may read this") })).toMatchObject({ groupSeq: 5 });
    expect(await groupSeqsOf(bob)).toEqual([1]);

    await evictDurableObject(groupStub(g));
    expect(await runDurableObjectAlarm(groupStub(g))).toBe(true);
    await fannedOut(g);
    expect(await groupSeqsOf(bob)).toEqual([1, 2, 3, 4, 5]);
    expect(await groupSeqsOf(carol)).toEqual([1, 2, 3]); // up to and including her removal
    expect(await groupSeqsOf(dave)).toEqual([4, 5]); // from his addition on
    expect(await groupSeqsOf(alice)).toEqual([1, 3, 4]); // events, not her own messages
    expect((await api("GET", "/v1/groups", { token: carol.session.accessToken })).json).toEqual({ groups: [] });
    expect((await api("GET", "/v1/groups", { token: dave.session.accessToken })).json).toEqual({ groups: [{ groupId: g, kind: "group", fanout: "write" }] });
  });
});
