/** The per-user inbox: store-then-ack, order, redelivery, dedupe, device lists, receipts, flow control. */
import { abortAllDurableObjects, evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { MessageEnvelope, ReceiptEnvelope } from "../../../src/protocol/frames";
import { LIMITS } from "../../../src/protocol/limits";
import { addressTo, api, body, connect, linkDevice, registerUser, type TestDevice, type TestSocket } from "../support/relay";

const stubOf = (d: TestDevice) => env.USER.get(env.USER.idFromName(d.session.userId));

/** Rows in a user's inbox, per device, read straight from its SQLite. */
async function inboxRows(d: TestDevice) {
  return runInDurableObject(stubOf(d), (_obj, state) =>
    state.storage.sql.exec<{ device_id: number; seq: number; envelope: string }>("SELECT device_id, seq, envelope FROM inbox ORDER BY device_id, seq").toArray(),
  );
}


/** The message ids of the delivered receipts stored for a user's first device, in inbox order. */
async function deliveredTo(d: TestDevice): Promise<string[]> {
  return (await inboxRows(d))
    .filter((r) => r.device_id === 1 && r.envelope.includes('"delivered"'))
    .flatMap((r) => (JSON.parse(r.envelope) as ReceiptEnvelope).refs.map((ref) => ref.id));
}


/**
 * A fast conversation from `a` to `b`'s user: `exchange` sends one message and lets b's device acknowledge it (a
 * later frame on b's socket, here a refused one, is answered only after the ack). `owedByBob`: the message ids of
 * the receipts bob's object still keeps in its outbox. `sync`: the sender's other devices.
 */
function conversation(a: TestSocket, b: TestSocket, bob: TestDevice, sync: TestDevice[] = []) {
  const exchange = async (id: string) => {
    await a.request({ type: "send", id, to: bob.session.userId, messages: addressTo([bob], id), sync: addressTo(sync, id) });
    await b.receive(1);
    expect(await b.request({ type: "send", id: `after-${id}`, to: "nobody", messages: [] })).toMatchObject({ code: "bad_request" });
  };
  const owedByBob = async () =>
    (await runInDurableObject(stubOf(bob), (_o, state) => state.storage.sql.exec<{ receipt: string }>("SELECT receipt FROM receipt_outbox").toArray())).flatMap(
      (r) => (JSON.parse(r.receipt) as { refs: { id: string }[] }).refs.map((ref) => ref.id),
    );
  return { exchange, owedByBob };
}

describe("sending 1:1", () => {
  it("delivers to an online device at once, acknowledges the sender after storage, and returns a delivered tick", async () => {
    const alice = await registerUser();
    const bob = await registerUser();
    const { socket: a } = await connect(alice);
    const { socket: b, first } = await connect(bob);
    expect(first).toMatchObject({ type: "ready", userId: bob.session.userId, deviceId: 1, pending: 0 });

    const sent = await a.request({ type: "send", id: "hello-1", to: bob.session.userId, messages: addressTo([bob], "hi bob") });
    expect(sent).toMatchObject({ type: "sent", id: "hello-1" });
    const [envelope] = (await b.receive(1)) as MessageEnvelope[];
    expect(envelope).toMatchObject({
      kind: "message",
      from: alice.session.userId,
      fromDevice: 1,
      id: "hello-1",
      type: 2,
      body: body("hi bob"),
      ts: (sent as { ts: number }).ts,
    });

    const [tick] = (await a.receive(1)) as ReceiptEnvelope[];
    expect(tick).toMatchObject({ kind: "receipt", receipt: "delivered", from: bob.session.userId, fromDevice: 1, refs: [{ device: 1, id: "hello-1" }] });
    expect(await inboxRows(bob)).toEqual([]);
  });

  it("keeps an offline device's backlog and delivers it in strictly increasing order on connect", async () => {
    const alice = await registerUser();
    const bob = await registerUser();
    const { socket: a } = await connect(alice);
    for (let i = 0; i < 30; i++) {
      await a.request({ type: "send", id: `bl-${i}`, to: bob.session.userId, messages: addressTo([bob], `msg ${i}`) });
    }
    const { socket: b, first } = await connect(bob);
    expect(first).toMatchObject({ type: "ready", pending: 30 });
    const got = (await b.receive(30)) as MessageEnvelope[];
    expect(got.map((e) => e.id)).toEqual(Array.from({ length: 30 }, (_, i) => `bl-${i}`));
    const seqs = got.map((e) => e.seq);
    expect(seqs.every((s, i) => i === 0 || s > seqs[i - 1]!)).toBe(true);
  });

  it("redelivers what was not acknowledged on the next connection", async () => {
    const alice = await registerUser();
    const bob = await registerUser();
    const { socket: a } = await connect(alice);
    const { socket: b1 } = await connect(bob);
    await a.request({ type: "send", id: "r1", to: bob.session.userId, messages: addressTo([bob], "one") });
    await a.request({ type: "send", id: "r2", to: bob.session.userId, messages: addressTo([bob], "two") });
    const first = await b1.receive(2, false);
    b1.send({ type: "ack", upTo: first[0]!.seq }); // only the first
    b1.close();
    await b1.closed;
    const { socket: b2, first: ready } = await connect(bob);
    expect(ready).toMatchObject({ pending: 1 });
    const again = await b2.receive(1);
    expect(again.map((e) => (e as MessageEnvelope).id)).toEqual(["r2"]);
  });

  it("stores a retried send (same client id) once and acknowledges it again with the first timestamp", async () => {
    const alice = await registerUser();
    const bob = await registerUser();
    const { socket: a } = await connect(alice);
    const frame = { type: "send", id: "dup-1", to: bob.session.userId, messages: addressTo([bob], "once") } as const;
    const first = await a.request(frame);
    const second = await a.request(frame);
    expect(second).toEqual(first);
    expect(await inboxRows(bob)).toHaveLength(1);
  });

  it("never loses an acknowledged message when either user's object is evicted or aborted", async () => {
    const alice = await registerUser();
    const bob = await registerUser();
    const { socket: a } = await connect(alice);
    await a.request({ type: "send", id: "ev-1", to: bob.session.userId, messages: addressTo([bob], "before eviction") });
    await evictDurableObject(stubOf(bob));
    await evictDurableObject(stubOf(alice));
    const { socket: a2 } = await connect(alice);
    await a2.request({ type: "send", id: "ev-2", to: bob.session.userId, messages: addressTo([bob], "after eviction") });
    await abortAllDurableObjects();
    const { socket: b } = await connect(bob);
    const got = (await b.receive(2)) as MessageEnvelope[];
    expect(got.map((e) => [e.id, atob(e.body)])).toEqual([
      ["ev-1", "before eviction"],
      ["ev-2", "after eviction"],
    ]);
  });

  it("keeps sockets across hibernation: a hibernated recipient still gets pushes and answers pings without waking", async () => {
    const alice = await registerUser();
    const bob = await registerUser();
    const { socket: b } = await connect(bob);
    await evictDurableObject(stubOf(bob)); // hibernates the socket
    b.send('{"type":"ping"}');
    expect(await b.next("pong")).toEqual({ type: "pong" });
    const { socket: a } = await connect(alice);
    await a.request({ type: "send", id: "hib-1", to: bob.session.userId, messages: addressTo([bob], "wake up") });
    const [got] = (await b.receive(1)) as MessageEnvelope[];
    expect(got!.id).toBe("hib-1");
  });
});

describe("device lists", () => {
  it("refuses an incomplete, extra or stale device list with the exact repair, and stores nothing", async () => {
    const alice = await registerUser();
    const bob = await registerUser();
    const bob2 = await linkDevice(bob);
    const { socket: a } = await connect(alice);

    const missing = await a.request({ type: "send", id: "mm-1", to: bob.session.userId, messages: addressTo([bob], "x") });
    expect(missing).toMatchObject({
      type: "error",
      code: "mismatched_devices",
      mismatches: [{ userId: bob.session.userId, missing: [2], extra: [], stale: [] }],
    });

    const stale = addressTo([bob, bob2], "x");
    stale[1] = { ...stale[1]!, registrationId: (bob2.keys.registrationId % 16000) + 1 };
    stale.push({ device: 4, registrationId: 7, type: 2, body: body("x") });
    const wrong = await a.request({ type: "send", id: "mm-2", to: bob.session.userId, messages: stale });
    expect(wrong).toMatchObject({ code: "mismatched_devices", mismatches: [{ missing: [], extra: [4], stale: [2] }] });
    expect(await inboxRows(bob)).toEqual([]);

    const ok = await a.request({ type: "send", id: "mm-3", to: bob.session.userId, messages: addressTo([bob, bob2], "x") });
    expect(ok.type).toBe("sent");
    expect((await inboxRows(bob)).map((r) => r.device_id)).toEqual([1, 2]);
  });

  it("copies a send to the sender's other devices (sync) and refuses a sync list that misses one", async () => {
    const alice = await registerUser();
    const alice2 = await linkDevice(alice);
    const bob = await registerUser();
    const { socket: a } = await connect(alice);

    const noSync = await a.request({ type: "send", id: "s-1", to: bob.session.userId, messages: addressTo([bob], "x") });
    expect(noSync).toMatchObject({ code: "mismatched_devices", mismatches: [{ userId: alice.session.userId, missing: [2] }] });
    expect(await inboxRows(bob)).toEqual([]);

    const ok = await a.request({
      type: "send",
      id: "s-2",
      to: bob.session.userId,
      messages: addressTo([bob], "for bob"),
      sync: addressTo([alice2], "copy for my laptop"),
    });
    expect(ok.type).toBe("sent");
    const { socket: a2 } = await connect(alice2);
    const [copy] = (await a2.receive(1)) as MessageEnvelope[];
    expect(copy).toMatchObject({ from: alice.session.userId, fromDevice: 1, id: "s-2", body: body("copy for my laptop") });
  });

  it("lets a user message their own other devices, and refuses an unknown recipient", async () => {
    const alice = await registerUser();
    const alice2 = await linkDevice(alice);
    const { socket: a } = await connect(alice);
    const self = await a.request({ type: "send", id: "self-1", to: alice.session.userId, messages: addressTo([alice2], "note") });
    expect(self.type).toBe("sent");
    const nobody = await a.request({
      type: "send",
      id: "nobody",
      to: crypto.randomUUID(),
      messages: addressTo([alice2], "x"),
      sync: addressTo([alice2], "x"),
    });
    expect(nobody).toMatchObject({ type: "error", code: "not_found" });
  });
});

describe("bad frames", () => {
  it("answers malformed, unknown, oversize and invalid frames with typed errors and changes nothing", async () => {
    const alice = await registerUser();
    const bob = await registerUser();
    const { socket: a } = await connect(alice);
    const to = bob.session.userId;
    const good = addressTo([bob], "x")[0]!;

    a.send("{not json");
    expect(await a.next("error")).toMatchObject({ code: "bad_request", message: "frame is not valid JSON" });
    a.send({ type: "subscribe", id: "u1" });
    expect(await a.next("error")).toMatchObject({ code: "unknown_frame", id: "u1" });
    a.send(JSON.stringify({ type: "send", id: "big", to, messages: [good] }).padEnd(LIMITS.maxFrameBytes + 1, " "));
    expect(await a.next("error")).toMatchObject({ code: "too_large" });
    const cases: [string, Record<string, unknown>, string][] = [
      ["b64", { messages: [{ ...good, body: "not base64!" }] }, "messages.0.body: body must be standard padded base64"],
      ["huge", { messages: [{ ...good, body: btoa("x".repeat(LIMITS.maxEnvelopeBytes + 3)) }] }, `body exceeds ${LIMITS.maxEnvelopeBytes} bytes`],
      ["type", { messages: [{ ...good, type: 5 }] }, "messages.0.type"],
      ["to", { to: "bob" }, "to"],
      ["twice", { messages: [good, good] }, "device 1 is addressed twice"],
    ];
    for (const [caseId, change, message] of cases) {
      const error = await a.request({ type: "send", id: caseId, to, messages: [good], ...change } as never);
      expect(error).toMatchObject({ type: "error", code: "bad_request", id: caseId });
      expect((error as { message: string }).message).toContain(message);
    }
    const badId = await a.request({ type: "send", id: "has space", to, messages: [good] });
    expect(badId).toMatchObject({ code: "bad_request" });
    expect(await inboxRows(bob)).toEqual([]);
  });

  it("refuses an ack beyond what was delivered and keeps the envelopes", async () => {
    const alice = await registerUser();
    const bob = await registerUser();
    const { socket: a } = await connect(alice);
    await a.request({ type: "send", id: "ack-1", to: bob.session.userId, messages: addressTo([bob], "x") });
    const { socket: b } = await connect(bob);
    const [got] = await b.receive(1, false);
    b.send({ type: "ack", upTo: got!.seq + 5 });
    expect(await b.next("error")).toMatchObject({ code: "invalid_ack" });
    b.send({ type: "ack", upTo: 0 });
    expect(await b.next("error")).toMatchObject({ code: "bad_request" });
    expect(await inboxRows(bob)).toHaveLength(1);
  });
});

describe("flow control", () => {
  it("drains a large backlog in pages, never more than the window unacknowledged, none missing or duplicated", async () => {
    const alice = await registerUser();
    const bob = await registerUser();
    const total = LIMITS.deliveryWindow + 2 * LIMITS.deliveryPageSize + 7;
    await runInDurableObject(stubOf(bob), async (obj) => {
      const items = Array.from({ length: total }, (_, i) => ({
        from: alice.session.userId,
        fromDevice: 1,
        id: `fc-${i}`,
        messages: addressTo([bob], `m${i}`),
      }));
      const { results } = await obj.deliver(items);
      expect(results.every((r) => r.ok)).toBe(true);
    });
    const { socket: b } = await connect(bob);
    const seen: number[] = [];
    let unacked = 0;
    while (seen.length < total) {
      const frame = await b.next("deliver");
      expect(frame.envelopes.length).toBeLessThanOrEqual(LIMITS.deliveryPageSize);
      unacked += frame.envelopes.length;
      expect(unacked).toBeLessThanOrEqual(LIMITS.deliveryWindow);
      seen.push(...frame.envelopes.map((e) => e.seq));
      if (unacked === LIMITS.deliveryWindow || seen.length === total) {
        b.send({ type: "ack", upTo: seen[seen.length - 1]! });
        unacked = 0;
      }
    }
    expect(new Set(seen).size).toBe(total);
    expect(seen).toEqual([...seen].sort((x, y) => x - y));
    expect(await inboxRows(bob)).toEqual([]);
  });
});

describe("waking up", () => {
  it("tells a hibernated user's sockets of a group's new entries without reading SQLite", async () => {
    const bob = await registerUser();
    const { socket: b } = await connect(bob);
    await evictDurableObject(stubOf(bob));
    expect(await stubOf(bob).groupNotice("g-1", 7)).toBe(true);
    expect(await b.next("group_notice")).toMatchObject({ group: "g-1", upTo: 7 });
    const loaded = await runInDurableObject(stubOf(bob), (obj) => (obj as unknown as { stored?: unknown }).stored);
    expect(loaded).toBeUndefined();
    // The next frame reads what it needs.
    expect(await b.request({ type: "read", id: "r-after", to: bob.session.userId, refs: [{ device: 1, id: "x" }] })).toMatchObject({ type: "sent" });
    const after = await runInDurableObject(stubOf(bob), (obj) => (obj as unknown as { stored?: { userId: string } }).stored);
    expect(after).toMatchObject({ userId: bob.session.userId });
  });
});

describe("sequences", () => {
  it("never go back: after everything is acknowledged and the object restarts, the next envelope comes later", async () => {
    const alice = await registerUser();
    const bob = await registerUser();
    const deliver = (ids: string[]) =>
      runInDurableObject(stubOf(bob), async (obj) => {
        const { results } = await obj.deliver(ids.map((id) => ({ from: alice.session.userId, fromDevice: 1, id, messages: addressTo([bob], id) })));
        expect(results.every((r) => r.ok)).toBe(true);
      });
    // More than one block of reserved sequences (1,024), so the reservation moves on at least once.
    const first = Array.from({ length: 1_100 }, (_, i) => `seq-${i}`);
    await deliver(first);
    const { socket: b } = await connect(bob);
    const got = await b.receive(first.length);
    const highest = got[got.length - 1]!.seq;
    await b.request({ type: "send", id: "sync", to: "nobody", messages: [] }); // answered after the last ack
    b.close();
    await b.closed;
    expect(await inboxRows(bob)).toEqual([]);

    await abortAllDurableObjects();
    await deliver(["after-restart"]);
    const { socket: b2, first: ready } = await connect(bob);
    expect(ready).toMatchObject({ pending: 1 });
    const [next] = (await b2.receive(1)) as MessageEnvelope[];
    expect(next).toMatchObject({ id: "after-restart" });
    expect(next!.seq).toBeGreaterThan(highest);
    await deliver(["then-live"]);
    const [live] = (await b2.receive(1)) as MessageEnvelope[];
    expect(live).toMatchObject({ id: "then-live", seq: next!.seq + 1 });
  });
});

describe("receipts", () => {
  it("sends read receipts to every device of the sender, and drops them when either side turned them off", async () => {
    const alice = await registerUser();
    const alice2 = await linkDevice(alice);
    const bob = await registerUser();
    const { socket: b } = await connect(bob);
    const read = await b.request({ type: "read", id: "rd-1", to: alice.session.userId, refs: [{ device: 1, id: "m-1" }] });
    expect(read).toMatchObject({ type: "sent", id: "rd-1" });
    expect(read).not.toHaveProperty("dropped");
    for (const device of [alice, alice2]) {
      const { socket } = await connect(device);
      const [receipt] = (await socket.receive(1)) as ReceiptEnvelope[];
      expect(receipt).toMatchObject({ kind: "receipt", receipt: "read", from: bob.session.userId, refs: [{ device: 1, id: "m-1" }] });
    }

    expect((await api("PUT", "/v1/settings", { token: alice.session.accessToken, body: { readReceipts: false } })).json).toEqual({ readReceipts: false });
    const dropped = await b.request({ type: "read", id: "rd-2", to: alice.session.userId, refs: [{ device: 1, id: "m-2" }] });
    expect(dropped).toMatchObject({ type: "sent", dropped: true });

    await api("PUT", "/v1/settings", { token: bob.session.accessToken, body: { readReceipts: false } });
    const own = await b.request({ type: "read", id: "rd-3", to: alice.session.userId, refs: [{ device: 1, id: "m-3" }] });
    expect(own).toMatchObject({ type: "sent", dropped: true });
    expect((await inboxRows(alice)).filter((r) => r.envelope.includes('"read"'))).toEqual([]);
  });

  it("stores a delivered receipt for an offline sender, once per message even with two recipient devices", async () => {
    const alice = await registerUser();
    const bob = await registerUser();
    const bob2 = await linkDevice(bob);
    const { socket: a } = await connect(alice);
    await a.request({ type: "send", id: "tick-1", to: bob.session.userId, messages: addressTo([bob, bob2], "x") });
    a.close();
    await a.closed;

    const { socket: b1 } = await connect(bob);
    await b1.receive(1);
    const { socket: a2 } = await connect(alice);
    const [tick] = (await a2.receive(1)) as ReceiptEnvelope[];
    expect(tick).toMatchObject({ receipt: "delivered", from: bob.session.userId, refs: [{ device: 1, id: "tick-1" }] });

    const { socket: b2 } = await connect(bob2);
    await b2.receive(1);
    // A later frame on the same socket is answered only after the ack before it was processed.
    await b2.request({ type: "read", id: "after-ack", to: bob.session.userId, refs: [{ device: 1, id: "x" }] });
    const owed = await runInDurableObject(stubOf(bob), (_o, state) => state.storage.sql.exec<{ receipt: string }>("SELECT receipt FROM receipt_outbox").toArray());
    expect(owed.filter((r) => JSON.parse(r.receipt).fromDevice === 2)).toEqual([]);
    expect((await inboxRows(alice)).filter((r) => r.envelope.includes("delivered"))).toEqual([]);
  });

  it("carries a fast conversation's receipts to the sender's online device live, keeping each until it is acknowledged", async () => {
    const alice = await registerUser();
    const bob = await registerUser();
    const { socket: a } = await connect(alice);
    const { socket: b } = await connect(bob);
    const { exchange, owedByBob } = conversation(a, b, bob);

    await exchange("fast-1"); // the conversation's first call: its receipt is handed over on its own, and stored
    await a.next("deliver");
    await exchange("fast-2"); // the next call came right after: this receipt waits for the one after
    expect(await deliveredTo(alice)).toEqual(["fast-1"]);

    await exchange("fast-3"); // its answer carries fast-2's receipt, pushed to alice's device without storing it
    const first = await a.next("receipts");
    expect(first.receipts).toEqual([expect.objectContaining({ kind: "receipt", receipt: "delivered", from: bob.session.userId, refs: [{ device: 1, id: "fast-2" }] })]);
    expect(await deliveredTo(alice)).toEqual(["fast-1"]);
    expect(await owedByBob()).toContain("fast-2"); // kept by bob until alice's device has it

    a.send({ type: "receipts_ack", batches: [first.batch] });
    await exchange("fast-4"); // confirms fast-2's receipt, carries fast-3's
    const second = await a.next("receipts");
    expect(second.receipts.flatMap((r) => r.refs.map((ref) => ref.id))).toEqual(["fast-3"]);
    expect(await owedByBob()).not.toContain("fast-2");
    expect(await owedByBob()).toContain("fast-3");

    // Alice's device never acknowledges fast-3's receipt, and bob's object goes away holding fast-4's
    // acknowledgement: bob's alarm writes it, hands both receipts over, and alice stores them.
    await evictDurableObject(stubOf(bob));
    await runDurableObjectAlarm(stubOf(bob));
    expect(await deliveredTo(alice)).toEqual(["fast-1", "fast-3", "fast-4"]);
    expect(await owedByBob()).toEqual([]);
    expect(await inboxRows(bob)).toEqual([]);
    const ticks = (await connect(alice)).socket;
    const refs = ((await ticks.receive(3)) as ReceiptEnvelope[]).flatMap((r) => r.refs.map((ref) => ref.id));
    expect(refs).toEqual(["fast-1", "fast-3", "fast-4"]);
  });

  it("writes an acknowledgement its evicted object held with the next call, not only by the alarm", async () => {
    const alice = await registerUser();
    const bob = await registerUser();
    const { socket: a } = await connect(alice);
    const { socket: b } = await connect(bob);
    const { exchange } = conversation(a, b, bob);
    const keptByBob = async () => (await inboxRows(bob)).map((r) => (JSON.parse(r.envelope) as MessageEnvelope).id);

    await exchange("held-1");
    await exchange("held-2"); // a fast conversation: bob's device's acknowledgement of held-2 is held in memory
    await evictDurableObject(stubOf(bob)); // only the socket's attachment remembers it now
    await a.request({ type: "send", id: "held-3", to: bob.session.userId, messages: addressTo([bob], "held-3") });
    expect(await keptByBob()).toEqual(["held-3"]); // written by the call, before bob's device acknowledges held-3
  });

  it("stores a carried receipt for the sender's devices that are offline, and pushes it live to the others", async () => {
    const alice = await registerUser();
    const alice2 = await linkDevice(alice);
    const bob = await registerUser();
    const { socket: a } = await connect(alice);
    const { socket: b } = await connect(bob);
    const { exchange } = conversation(a, b, bob, [alice2]);

    await exchange("multi-1");
    await exchange("multi-2");
    await exchange("multi-3"); // carries multi-2's receipt
    const live = await a.next("receipts");
    expect(live.receipts.flatMap((r) => r.refs.map((ref) => ref.id))).toEqual(["multi-2"]);
    const storedFor = async (device: number) =>
      (await inboxRows(alice)).filter((r) => r.device_id === device && r.envelope.includes('"delivered"')).flatMap((r) => (JSON.parse(r.envelope) as ReceiptEnvelope).refs.map((ref) => ref.id));
    expect(await storedFor(1)).toEqual(["multi-1"]);
    expect(await storedFor(2)).toEqual(["multi-1", "multi-2"]);
    const { socket: second } = await connect(alice2);
    const receipts = (await second.receive(5)).filter((e): e is ReceiptEnvelope => e.kind === "receipt"); // and 3 sync copies
    expect(receipts.flatMap((r) => r.refs.map((ref) => ref.id))).toEqual(["multi-1", "multi-2"]);
  });

  it("stores a carried receipt for a device whose socket is still behind, so the tick never overtakes earlier envelopes", async () => {
    const alice = await registerUser();
    const bob = await registerUser();
    const carol = await registerUser();
    const backlog = LIMITS.deliveryWindow + 5; // more than one window: alice's socket cannot be sent it all yet
    await runInDurableObject(stubOf(alice), async (obj) => {
      const items = Array.from({ length: backlog }, (_, i) => ({ from: carol.session.userId, fromDevice: 1, id: `c-${i}`, messages: addressTo([alice], `c${i}`) }));
      expect((await obj.deliver(items)).results.every((r) => r.ok)).toBe(true);
    });
    const { socket: a } = await connect(alice);
    const { socket: b } = await connect(bob);
    const { exchange } = conversation(a, b, bob);

    await exchange("behind-1");
    await exchange("behind-2");
    await exchange("behind-3"); // carries behind-2's receipt back while alice's socket is behind
    expect(a.frames.some((f) => f.type === "receipts")).toBe(false);
    expect(await deliveredTo(alice)).toEqual(["behind-1", "behind-2"]);
  });

  it("ignores acknowledgements of receipt batches it never sent, or sent to another device, and refuses malformed ones", async () => {
    const alice = await registerUser();
    const alice2 = await linkDevice(alice);
    const bob = await registerUser();
    const { socket: a } = await connect(alice);
    const { socket: a2 } = await connect(alice2);
    const { socket: b } = await connect(bob);
    const { exchange, owedByBob } = conversation(a, b, bob, [alice2]);

    await exchange("ack-1");
    await exchange("ack-2");
    await exchange("ack-3");
    const [toFirst, toSecond] = [await a.next("receipts"), await a2.next("receipts")];
    a.send({ type: "receipts_ack", batches: ["nope.1", toSecond.batch] }); // unknown, and alice2's
    for (const batches of [[], ["x".repeat(LIMITS.maxBatchIdChars + 1)], "all"]) {
      a.send({ type: "receipts_ack", batches });
      expect(await a.next("error")).toMatchObject({ code: "bad_request" });
    }
    await exchange("ack-4");
    expect(await owedByBob()).toContain("ack-2"); // alice's first device has not acknowledged its own batch

    a.send({ type: "receipts_ack", batches: [toFirst.batch] });
    a2.send({ type: "receipts_ack", batches: [toSecond.batch] });
    await a2.request({ type: "read", id: "after-acks", to: bob.session.userId, refs: [{ device: 1, id: "ack-1" }] });
    await exchange("ack-5");
    expect(await owedByBob()).not.toContain("ack-2");
  });

  it("hands over a receipt left in the outbox by a crash when the retry alarm fires", async () => {
    const alice = await registerUser();
    const bob = await registerUser();
    await runInDurableObject(stubOf(bob), async (_obj, state) => {
      // What an acknowledgement leaves behind if the object dies before handing the receipt over.
      const receipt = { id: "crashed", receipt: "delivered", from: bob.session.userId, fromDevice: 1, refs: [{ device: 1, id: "lost-1" }], ts: Date.now() };
      state.storage.sql.exec("INSERT INTO receipt_outbox (target, receipt) VALUES (?, ?)", alice.session.userId, JSON.stringify(receipt));
      await state.storage.setAlarm(Date.now() + 60_000);
    });
    await abortAllDurableObjects();
    expect(await runDurableObjectAlarm(stubOf(bob))).toBe(true);
    const { socket } = await connect(alice);
    const [tick] = (await socket.receive(1)) as ReceiptEnvelope[];
    expect(tick).toMatchObject({ receipt: "delivered", from: bob.session.userId, refs: [{ device: 1, id: "lost-1" }] });
    const left = await runInDurableObject(stubOf(bob), (_o, state) => state.storage.sql.exec("SELECT id FROM receipt_outbox").toArray());
    expect(left).toEqual([]);
  });
});
