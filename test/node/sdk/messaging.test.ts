/**
 * The SDK end to end against the real server (`npm start`): two users with two devices each, every
 * message decrypted by every device (sync copies included), ticks up to read, an offline device catching
 * up in order, and the server's persisted state holding ciphertext only.
 */
import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MemoryStore, Relay, type MessageRecord, type RelayEvents, type RelayStore } from "../../../client/node";
import type { ClientFrame } from "../../../src/protocol/frames";
import { startRelay, type RelayServer } from "../support/server";
import { eventually } from "../support/eventually";

const FAST = { reconnectBaseMs: 50, reconnectMaxMs: 500, retryDelayMs: 100 };

/** The code in the latest SMS to `phone`. */
async function smsCode(server: RelayServer, phone: string): Promise<string> {
  return eventually(() => /(\d{6})/.exec(server.sms.findLast((m) => m.to === phone)?.text ?? "")?.[1]);
}


/** A WebSocket that records every frame the client sends. */
function recordingWebSocket(frames: ClientFrame[]) {
  return class extends WebSocket {
    override send(data: Parameters<WebSocket["send"]>[0]): void {
      if (typeof data === "string" && data.startsWith("{")) frames.push(JSON.parse(data) as ClientFrame);
      super.send(data);
    }
  };
}

/** A device under test: its Relay, store and everything it emitted. */
interface Device {
  relay: Relay;
  store: RelayStore;
  messages: MessageRecord[];
  statuses: RelayEvents["status"][];
  errors: unknown[];
  frames: ClientFrame[];
}

function observe(relay: Relay, store: RelayStore, frames: ClientFrame[]): Device {
  const device: Device = { relay, store, messages: [], statuses: [], errors: [], frames };
  relay.on("message", (m) => device.messages.push(m));
  relay.on("status", (s) => device.statuses.push(s));
  relay.on("error", (e) => device.errors.push(e));
  return device;
}

const text = (m: MessageRecord) => ("text" in m.body ? m.body.text : undefined);

/** Every file under `dir`. */
async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) out.push(join(entry.parentPath, entry.name));
  }
  return out;
}

describe("Relay SDK end to end: two users, two devices each", () => {
  let server: RelayServer;
  let persistTo: string;
  let alice1: Device, alice2: Device, bob1: Device, bob2: Device;
  const secret = `plain-${crypto.randomUUID()}`;

  async function register(phone: string): Promise<Device> {
    const store = new MemoryStore();
    const frames: ClientFrame[] = [];
    const relay = await Relay.register({ url: server.url, phone, store, tuning: FAST, WebSocket: recordingWebSocket(frames), code: () => smsCode(server, phone) });
    return observe(relay, store, frames);
  }

  async function link(primary: Device): Promise<Device> {
    const store = new MemoryStore();
    const frames: ClientFrame[] = [];
    const { code } = await primary.relay.linkDevice();
    const relay = await Relay.link({ url: server.url, code, store, tuning: FAST, WebSocket: recordingWebSocket(frames), name: "second" });
    return observe(relay, store, frames);
  }

  beforeAll(async () => {
    persistTo = await mkdtemp(join(tmpdir(), "relay-sdk-"));
    server = await startRelay({ persistTo });
    alice1 = await register("+14155550111");
    bob1 = await register("+14155550112");
    [alice2, bob2] = await Promise.all([link(alice1), link(bob1)]);
    await Promise.all([alice1, alice2, bob1, bob2].map((d) => d.relay.opened()));
  });

  afterAll(async () => {
    await Promise.all([alice1, alice2, bob1, bob2].map((d) => d?.relay.close()));
    await server?.stop();
    await rm(persistTo, { recursive: true, force: true });
  });

  it("every device decrypts every message, its own sync copies included", async () => {
    expect(alice2.relay.deviceId).toBe(2);
    expect(alice2.relay.userId).toBe(alice1.relay.userId);
    const a = await alice1.relay.send(bob1.relay.userId, `${secret} from alice`);
    expect(a.status).toBe("pending");
    const b = await bob2.relay.send(alice1.relay.userId, `${secret} from bob`);

    for (const device of [bob1, bob2]) {
      const got = await eventually(() => device.messages.find((m) => m.id === a.id));
      expect(got).toMatchObject({ direction: "incoming", from: alice1.relay.userId, fromDevice: 1, conversation: alice1.relay.userId });
      expect(text(got)).toBe(`${secret} from alice`);
    }
    const syncA = await eventually(() => alice2.messages.find((m) => m.id === a.id));
    expect(syncA).toMatchObject({ direction: "outgoing", conversation: bob1.relay.userId, to: bob1.relay.userId, status: "sent" });
    expect(text(syncA)).toBe(`${secret} from alice`);

    for (const device of [alice1, alice2]) {
      const got = await eventually(() => device.messages.find((m) => m.id === b.id));
      expect(got).toMatchObject({ direction: "incoming", from: bob1.relay.userId, fromDevice: 2 });
      expect(text(got)).toBe(`${secret} from bob`);
    }
    const syncB = await eventually(() => bob1.messages.find((m) => m.id === b.id));
    expect(syncB).toMatchObject({ direction: "outgoing", conversation: alice1.relay.userId });

    // Bytes travel too, and history lists each conversation in order on every device.
    const bytes = crypto.getRandomValues(new Uint8Array(300));
    const c = await alice2.relay.send(bob1.relay.userId, bytes);
    const gotBytes = await eventually(() => bob2.messages.find((m) => m.id === c.id));
    expect("bytes" in gotBytes.body && gotBytes.body.bytes).toEqual(bytes);
    await eventually(() => alice1.messages.find((m) => m.id === c.id));
    // (a and b crossed on the wire: the server's order decides; c came after both.)
    const history = await bob1.relay.messages(alice1.relay.userId);
    expect(history.map((m) => m.id).sort()).toEqual([a.id, b.id, c.id].sort());
    expect(history.at(-1)!.id).toBe(c.id);
    const times = history.map((m) => m.serverTs!);
    expect(times).toEqual([...times].sort((x, y) => x - y));
    for (const d of [alice1, alice2, bob1, bob2]) expect(d.errors).toEqual([]);
  });

  it("ticks: pending → sent → delivered → read, on the sender's other device as well", async () => {
    const m = await alice1.relay.send(bob1.relay.userId, `${secret} tick`);
    await eventually(() => alice1.statuses.find((s) => s.id === m.id && s.status === "delivered"));
    const received = await eventually(() => bob1.messages.find((x) => x.id === m.id));
    await bob1.relay.markRead([received]);
    expect((await bob1.relay.message(received))?.status).toBe("read");
    await eventually(() => alice1.statuses.find((s) => s.id === m.id && s.status === "read"));
    expect(alice1.statuses.filter((s) => s.id === m.id).map((s) => s.status)).toEqual(["pending", "sent", "delivered", "read"]);
    await eventually(() => alice2.statuses.find((s) => s.id === m.id && s.status === "read"));
    expect((await alice1.relay.message(m))?.status).toBe("read");
    expect(bob1.frames.some((f) => f.type === "read" && f.refs.some((r) => r.id === m.id))).toBe(true);
  });

  it("an offline device catches up in order; the server's files hold ciphertext, never plaintext", async () => {
    await bob2.relay.close();
    const ids: string[] = [];
    for (let i = 1; i <= 5; i++) ids.push((await alice1.relay.send(bob1.relay.userId, `${secret} offline ${i}`)).id);
    for (const id of ids) await eventually(() => alice1.statuses.find((s) => s.id === id && s.status === "sent"));

    // The server now holds the five envelopes for bob's offline device: look at its files.
    const toBob2 = alice1.frames
      .filter((f): f is Extract<ClientFrame, { type: "send" }> => f.type === "send" && ids.includes(f.id))
      .map((f) => f.messages.find((m) => m.device === 2)!.body);
    expect(toBob2).toHaveLength(5);
    const files = await filesUnder(persistTo);
    const contents = await Promise.all(files.map((f) => readFile(f)));
    const anywhere = (needle: string) => contents.some((c) => c.includes(Buffer.from(needle)));
    expect(files.some((f) => /\.sqlite$/.test(f))).toBe(true);
    expect(anywhere(secret)).toBe(false);
    expect(anywhere(Buffer.from(`${secret} offline 1`).toString("base64").slice(0, 40))).toBe(false);
    for (const body of toBob2) expect(anywhere(body)).toBe(true); // control: the ciphertext is there

    const frames: ClientFrame[] = [];
    const relay = await Relay.connect({ store: bob2.store, tuning: FAST, WebSocket: recordingWebSocket(frames) });
    bob2 = observe(relay, bob2.store, frames);
    await eventually(() => ids.every((id) => bob2.messages.some((m) => m.id === id)));
    expect(bob2.messages.filter((m) => ids.includes(m.id)).map(text)).toEqual([1, 2, 3, 4, 5].map((i) => `${secret} offline ${i}`));
    const history = await bob2.relay.messages(alice1.relay.userId, { limit: 5 });
    expect(history.map((m) => m.id)).toEqual(ids);
    expect(frames.some((f) => f.type === "ack")).toBe(true);
  });

  it("sends made while offline go out on reconnect with the same ids", async () => {
    await alice2.relay.close();
    const frames: ClientFrame[] = [];
    const offline = await Relay.connect({ store: alice2.store, url: "http://127.0.0.1:9", tuning: FAST, WebSocket: recordingWebSocket(frames) });
    const queued = await offline.send(bob1.relay.userId, `${secret} queued`);
    expect(await offline.pending()).toEqual([{ kind: "send", id: queued.id, to: bob1.relay.userId }]);
    await offline.close();

    const online = await Relay.connect({ store: alice2.store, tuning: FAST, WebSocket: recordingWebSocket(frames) });
    alice2 = observe(online, alice2.store, frames);
    const got = await eventually(() => bob1.messages.find((m) => m.id === queued.id));
    expect(text(got)).toBe(`${secret} queued`);
    await eventually(async () => (await online.pending()).length === 0);
    expect(frames.filter((f) => f.type === "send").map((f) => (f as { id: string }).id)).toEqual([queued.id]);
  });

  it("heartbeats keep an idle connection open: every ping is answered, nothing reconnects", async () => {
    await bob2.relay.close();
    const frames: ClientFrame[] = [];
    const relay = await Relay.connect({ store: bob2.store, tuning: { ...FAST, heartbeatIntervalMs: 150, heartbeatTimeoutMs: 300 }, WebSocket: recordingWebSocket(frames) });
    const states: string[] = [];
    relay.on("connection", (c) => states.push(c.state));
    bob2 = observe(relay, bob2.store, frames);
    await relay.opened();
    await new Promise((r) => setTimeout(r, 1_500));
    expect(frames.filter((f) => (f as { type: string }).type === "ping").length).toBeGreaterThanOrEqual(4);
    expect(states.filter((s) => s !== "open" && s !== "connecting")).toEqual([]);
    expect(states.filter((s) => s === "open").length).toBeLessThanOrEqual(1);
    expect(relay.connectionState).toBe("open");
    const m = await alice1.relay.send(bob1.relay.userId, "still listening?");
    await eventually(() => bob2.messages.some((x) => x.id === m.id));
  });
});
