/**
 * Device-list repair, as Signal clients do it: a send that misses a device the sender does not know yet
 * is refused with the exact mismatch, the SDK sets up the missing sessions and retries with the SAME id.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MemoryStore, Relay, type MessageRecord } from "../../../client/node";
import type { ClientFrame, ServerFrame } from "../../../src/protocol/frames";
import { startRelay, type RelayServer } from "../support/server";
import { eventually } from "../support/eventually";

const FAST = { reconnectBaseMs: 50, reconnectMaxMs: 500, retryDelayMs: 100 };


/** A WebSocket that records the frames in both directions. */
function recordingWebSocket(sent: ClientFrame[], received: ServerFrame[]) {
  return class extends WebSocket {
    constructor(url: string | URL, protocols?: string | string[]) {
      super(url, protocols);
      this.addEventListener("message", (e) => typeof e.data === "string" && received.push(JSON.parse(e.data) as ServerFrame));
    }
    override send(data: Parameters<WebSocket["send"]>[0]): void {
      if (typeof data === "string" && data.startsWith("{")) sent.push(JSON.parse(data) as ClientFrame);
      super.send(data);
    }
  };
}

interface Device {
  relay: Relay;
  messages: MessageRecord[];
  sent: ClientFrame[];
  received: ServerFrame[];
}

describe("device-list repair", () => {
  let server: RelayServer;
  const devices: Device[] = [];

  async function device(make: (options: { url: string; store: MemoryStore; tuning: typeof FAST; WebSocket: typeof WebSocket }) => Promise<Relay>): Promise<Device> {
    const sent: ClientFrame[] = [];
    const received: ServerFrame[] = [];
    const relay = await make({ url: server.url, store: new MemoryStore(), tuning: FAST, WebSocket: recordingWebSocket(sent, received) });
    const d: Device = { relay, messages: [], sent, received };
    relay.on("message", (m) => d.messages.push(m));
    devices.push(d);
    await relay.opened();
    return d;
  }

  const code = (phone: string) => eventually(() => /(\d{6})/.exec(server.sms.findLast((m) => m.to === phone)?.text ?? "")?.[1]);
  const sendsOf = (d: Device, id: string) => d.sent.filter((f): f is Extract<ClientFrame, { type: "send" }> => f.type === "send" && f.id === id);

  beforeAll(async () => {
    server = await startRelay();
  });

  afterAll(async () => {
    await Promise.all(devices.map((d) => d.relay.close()));
    await server?.stop();
  });

  it("Bob links a new device after Alice has a session: her next send is refused, repaired and retried with the same id", async () => {
    const alice = await device((o) => Relay.register({ ...o, phone: "+14155550121", code: code }));
    const bob1 = await device((o) => Relay.register({ ...o, phone: "+14155550122", code: code }));
    const first = await alice.relay.send(bob1.relay.userId, "before the new device");
    await eventually(() => bob1.messages.some((m) => m.id === first.id));

    const { code: linkCode } = await bob1.relay.linkDevice();
    const bob2 = await device((o) => Relay.link({ ...o, code: linkCode }));
    expect(bob2.relay.deviceId).toBe(2);

    const second = await alice.relay.send(bob1.relay.userId, "after the new device");
    for (const d of [bob1, bob2]) {
      const got = await eventually(() => d.messages.find((m) => m.id === second.id));
      expect(got.body).toEqual({ text: "after the new device" });
    }
    const attempts = sendsOf(alice, second.id);
    expect(attempts.map((f) => f.messages.map((m) => m.device))).toEqual([[1], [1, 2]]);
    const refusal = alice.received.find((f) => f.type === "error" && f.id === second.id);
    expect(refusal).toMatchObject({ code: "mismatched_devices", mismatches: [{ userId: bob1.relay.userId, missing: [2], extra: [], stale: [] }] });
    expect(alice.received.find((f) => f.type === "sent" && f.id === second.id)).toBeDefined();
    // The first message to the new device starts its session: a PreKeySignalMessage.
    expect(attempts[1]!.messages.find((m) => m.device === 2)!.type).toBe(3);
  });

  it("the sender's own new device is repaired into the sync copies the same way", async () => {
    const carol = await device((o) => Relay.register({ ...o, phone: "+14155550123", code: code }));
    const dave = await device((o) => Relay.register({ ...o, phone: "+14155550124", code: code }));
    const hello = await carol.relay.send(dave.relay.userId, "hello");
    await eventually(() => dave.messages.some((x) => x.id === hello.id));
    const { code: linkCode } = await carol.relay.linkDevice();
    const carol2 = await device((o) => Relay.link({ ...o, code: linkCode }));
    const m = await carol.relay.send(dave.relay.userId, "synced");
    const copy = await eventually(() => carol2.messages.find((x) => x.id === m.id));
    expect(copy).toMatchObject({ direction: "outgoing", conversation: dave.relay.userId, body: { text: "synced" } });
    const attempts = sendsOf(carol, m.id);
    expect(attempts.map((f) => (f.sync ?? []).map((s) => s.device))).toEqual([[], [2]]);
    expect(carol.received.find((f) => f.type === "error" && f.id === m.id)).toMatchObject({
      code: "mismatched_devices",
      mismatches: [{ userId: carol.relay.userId, missing: [2] }],
    });
  });

  it("a removed device is dropped (extra) and the send retried with the same id", async () => {
    const erin = await device((o) => Relay.register({ ...o, phone: "+14155550125", code: code }));
    const frank = await device((o) => Relay.register({ ...o, phone: "+14155550126", code: code }));
    const { code: linkCode } = await frank.relay.linkDevice();
    const frank2 = await device((o) => Relay.link({ ...o, code: linkCode }));
    const hello = await erin.relay.send(frank.relay.userId, "to both");
    await eventually(() => frank2.messages.some((m) => m.id === hello.id));
    await frank.relay.removeDevice(2);
    const after = await erin.relay.send(frank.relay.userId, "to one");
    await eventually(() => frank.messages.some((m) => m.id === after.id));
    expect(sendsOf(erin, after.id).map((f) => f.messages.map((m) => m.device))).toEqual([[1, 2], [1]]);
    expect(erin.received.find((f) => f.type === "error" && f.id === after.id)).toMatchObject({ mismatches: [{ extra: [2] }] });
  });
});
