/** Store, then acknowledge, then fan out: a crash anywhere after the ack loses nothing and duplicates nothing. */
import { abortAllDurableObjects, evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { body, connect, linkDevice, registerUser } from "../support/relay";
import { createGroup, fannedOut, groupInbox, groupRows, groupStub, receiveUntil } from "./support";

/** Makes the live GroupDO instance "die" right after acknowledging: its fan-out never starts in this life. */
async function stallFanout(groupId: string): Promise<void> {
  await runInDurableObject(groupStub(groupId), (instance) => {
    (instance as unknown as { fanout: { kick: () => Promise<void> } }).fanout.kick = () => Promise.resolve();
  });
}

describe("fan-out durability", () => {
  it("a message acknowledged before the GroupDO was evicted reaches every member device exactly once, in order", async () => {
    const alice = await registerUser();
    const bob = await registerUser();
    const bob2 = await linkDevice(bob);
    const carol = await registerUser();
    const group = await createGroup(alice, [bob, carol]);
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
});
