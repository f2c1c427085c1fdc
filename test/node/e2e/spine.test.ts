/**
 * The message spine end to end: the real `npm start` server, and two users as two separate Node
 * processes (test/node/support/client-process.ts) talking to it over HTTP and WebSockets.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Envelope, LiveReceipt, MessageEnvelope, ReceiptEnvelope, ServerFrame } from "../../../src/protocol/frames";
import type { PreKeyBundleResponse } from "../../../src/protocol/http";
import { deviceKeys } from "../../support/device-keys";
import type { ReceivedEnvelope } from "../support/client-process";
import { libsignalDeviceKeys } from "../support/libsignal-device";
import type { Arrival, Device } from "../support/relay-client";
import { startRelay, type RelayServer } from "../support/server";

const CLIENT_SCRIPT = fileURLToPath(new URL("../support/client-process.ts", import.meta.url));
const CALL_TIMEOUT_MS = 30_000;

/** A client process and the commands it understands (see client-process.ts). */
class ClientProcess {
  readonly child: ChildProcess;
  readonly output: string[] = [];
  private counter = 0;
  private pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  private readonly exited: Promise<void>;

  constructor(
    readonly name: string,
    relay: RelayServer,
  ) {
    this.child = spawn(process.execPath, ["--disable-warning=ExperimentalWarning", CLIENT_SCRIPT, relay.url], {
      stdio: ["ignore", "pipe", "pipe", "ipc"],
    });
    const keep = (chunk: Buffer) => this.output.push(chunk.toString("utf8"));
    this.child.stdout!.on("data", keep);
    this.child.stderr!.on("data", keep);
    this.exited = new Promise((resolve) =>
      this.child.once("exit", (code, signal) => {
        for (const { reject } of this.pending.values()) {
          reject(new Error(`${name}: client process exited (${code ?? signal}): ${this.output.join("")}`));
        }
        this.pending.clear();
        resolve();
      }),
    );
    this.child.on("message", (message: { id: number; ok: boolean; result?: unknown; error?: string } | { codeFor: string; req: number }) => {
      if ("codeFor" in message) {
        void codeFor(relay, message.codeFor).then((code) => this.child.send({ codeReply: message.req, code }));
        return;
      }
      const waiter = this.pending.get(message.id);
      this.pending.delete(message.id);
      if (message.ok) waiter?.resolve(message.result);
      else waiter?.reject(new Error(`${name}: ${message.error}`));
    });
  }

  call<T>(cmd: string, args: Record<string, unknown> = {}): Promise<T> {
    const id = ++this.counter;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.name}: ${cmd} took longer than ${CALL_TIMEOUT_MS} ms`));
      }, CALL_TIMEOUT_MS);
      this.pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.child.send({ id, cmd, args });
    });
  }

  register = (device: string, phone: string, keys: unknown) => this.call<Device>("register", { device, phone, keys });
  link = (device: string, from: string, keys: unknown) => this.call<Device>("link", { device, from, keys });
  bundle = (device: string, userId: string) => this.call<PreKeyBundleResponse>("bundle", { device, userId });
  connect = (device: string) => this.call<ServerFrame>("connect", { device });
  send = (device: string, frame: unknown) => this.call<Arrival>("send", { device, frame });
  read = (device: string, frame: unknown) => this.call<Arrival>("read", { device, frame });
  receive = (device: string, count: number) => this.call<ReceivedEnvelope[]>("receive", { device, count });
  until = (device: string, match: unknown) => this.call<{ found: ReceivedEnvelope; before: ReceivedEnvelope[] }>("until", { device, match });
  close = (device: string) => this.call<number>("close", { device });

  /** Ends the process (gracefully, then by force) and waits for it. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    await Promise.race([this.call("exit").catch(() => undefined), new Promise((r) => setTimeout(r, 3000))]);
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGKILL");
    await this.exited;
  }
}

/** The code in the latest SMS to `phone` (the server sends it before answering the code request). */
async function codeFor(relay: RelayServer, phone: string): Promise<string> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const sms = relay.sms.findLast((m) => m.to === phone);
    const code = sms && /(\d{6})/.exec(sms.text)?.[1];
    if (code) return code;
    if (Date.now() > deadline) throw new Error(`no SMS to ${phone}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const body = (text: string) => Buffer.from(text).toString("base64");
const isMessage = (e: Envelope | LiveReceipt): e is MessageEnvelope => e.kind === "message";
/** A stored receipt, or one pushed live (without a sequence). */
const isReceipt = (e: Envelope | LiveReceipt): e is ReceiptEnvelope | LiveReceipt => e.kind === "receipt";

describe("the message spine, end to end (npm start, two client processes)", () => {
  let relay: RelayServer;
  let alice: ClientProcess;
  let bob: ClientProcess;
  let aliceDevice: Device;
  let bobPrimary: Device;
  let bobSecond: Device;
  const bobPrimaryKeys = libsignalDeviceKeys({ preKeys: 3, kyberPreKeys: 2 });
  const bobSecondKeys = deviceKeys({ preKeys: 2, kyberPreKeys: 2 });
  const aliceKeys = deviceKeys({ preKeys: 2, kyberPreKeys: 1 });
  /** Delivered receipts Alice saw, by message id. */
  const deliveredRefs: string[] = [];
  const bobDevices = () => [
    { device: bobPrimary.session.deviceId, registrationId: bobPrimary.registrationId },
    { device: bobSecond.session.deviceId, registrationId: bobSecond.registrationId },
  ];
  const sendFrame = (id: string, text: string) => ({
    type: "send",
    id,
    to: bobPrimary.session.userId,
    messages: bobDevices().map((d) => ({ ...d, type: 2, body: body(text) })),
  });
  const noteDelivered = (envelopes: ReceivedEnvelope[]) => {
    for (const { envelope } of envelopes) {
      if (isReceipt(envelope) && envelope.receipt === "delivered") deliveredRefs.push(...envelope.refs.map((r) => r.id));
    }
  };

  beforeAll(async () => {
    relay = await startRelay();
    alice = new ClientProcess("alice", relay);
    bob = new ClientProcess("bob", relay);
  }, 120_000);

  afterAll(async () => {
    await Promise.all([alice?.stop(), bob?.stop()]);
    await relay?.stop();
  }, 60_000);

  it("registers Alice, and Bob with a bundle built by libsignal", async () => {
    [aliceDevice, bobPrimary] = await Promise.all([
      alice.register("phone", "+14155550101", aliceKeys.keys),
      bob.register("phone", "+14155550102", bobPrimaryKeys.keys),
    ]);
    expect(aliceDevice.session.deviceId).toBe(1);
    expect(bobPrimary.session.deviceId).toBe(1);
    expect(aliceDevice.session.userId).not.toBe(bobPrimary.session.userId);
    expect(aliceDevice.session.accessToken).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(relay.sms.map((m) => m.to).sort()).toEqual(["+14155550101", "+14155550102"]);
  });

  it("links a second device to Bob", async () => {
    bobSecond = await bob.link("second", "phone", bobSecondKeys.keys);
    expect(bobSecond.session.userId).toBe(bobPrimary.session.userId);
    expect(bobSecond.session.deviceId).toBe(2);
  });

  it("gives Alice Bob's bundle with both devices, one-time keys claimed", async () => {
    const bundle = await alice.bundle("phone", bobPrimary.session.userId);
    expect(bundle.userId).toBe(bobPrimary.session.userId);
    expect(bundle.devices.map((d) => d.deviceId).sort()).toEqual([1, 2]);
    const [primary, second] = [1, 2].map((id) => bundle.devices.find((d) => d.deviceId === id)!);
    // Device 1's keys are libsignal's, byte for byte as registered.
    expect(primary).toMatchObject({
      registrationId: bobPrimaryKeys.keys.registrationId,
      identityKey: bobPrimaryKeys.keys.identityKey,
      signedPreKey: bobPrimaryKeys.keys.signedPreKey,
      preKey: bobPrimaryKeys.keys.preKeys[0],
      kyberPreKey: { ...bobPrimaryKeys.keys.kyberPreKeys[0], lastResort: false },
    });
    expect(second).toMatchObject({
      registrationId: bobSecondKeys.keys.registrationId,
      identityKey: bobSecondKeys.keys.identityKey,
      preKey: bobSecondKeys.keys.preKeys[0],
      kyberPreKey: { ...bobSecondKeys.keys.kyberPreKeys[0], lastResort: false },
    });
    // One-time keys are handed out once: the next fetch gets the next ones.
    const again = await alice.bundle("phone", bobPrimary.session.userId);
    expect(again.devices.find((d) => d.deviceId === 1)!.preKey).toEqual(bobPrimaryKeys.keys.preKeys[1]);
  });

  it("delivers to both of Bob's online devices; Alice gets sent, then a delivered receipt", async () => {
    const ready = await Promise.all([alice.connect("phone"), bob.connect("phone"), bob.connect("second")]);
    for (const frame of ready) expect(frame).toMatchObject({ type: "ready", pending: 0 });

    const sent = await alice.send("phone", sendFrame("a1", "hello Bob"));
    expect(sent.frame).toMatchObject({ type: "sent", id: "a1" });

    const [[atPrimary], [atSecond]] = await Promise.all([bob.receive("phone", 1), bob.receive("second", 1)]);
    for (const received of [atPrimary!, atSecond!]) {
      expect(received.envelope).toMatchObject({
        kind: "message",
        from: aliceDevice.session.userId,
        fromDevice: 1,
        id: "a1",
        type: 2,
        body: body("hello Bob"),
        ts: (sent.frame as Extract<ServerFrame, { type: "sent" }>).ts,
      });
    }

    const { found, before } = await alice.until("phone", { kind: "receipt", receipt: "delivered", refs: [{ id: "a1" }] });
    noteDelivered([...before, found]);
    expect(found.envelope).toMatchObject({ from: bobPrimary.session.userId, refs: [{ device: 1, id: "a1" }] });
    expect(found.at).toBeGreaterThan(sent.at); // sent first, then the receipt
  });

  it("keeps 20 messages for Bob's offline device and delivers them in order when it reconnects", async () => {
    await bob.close("second");
    const ids = Array.from({ length: 20 }, (_, i) => `a${i + 2}`);
    for (const id of ids) {
      const answer = await alice.send("phone", sendFrame(id, `message ${id}`));
      expect(answer.frame).toMatchObject({ type: "sent", id });
    }

    // The online device gets them live.
    const live = await bob.receive("phone", 20);
    expect(live.map((r) => (r.envelope as MessageEnvelope).id)).toEqual(ids);

    const ready = await bob.connect("second");
    expect(ready).toMatchObject({ type: "ready", deviceId: 2, pending: 20 });
    const backlog = (await bob.receive("second", 20)).map((r) => r.envelope);
    expect(backlog.every(isMessage)).toBe(true);
    expect(backlog.map((e) => (e as MessageEnvelope).id)).toEqual(ids);
    expect(backlog.map((e) => (e as MessageEnvelope).body)).toEqual(ids.map((id) => body(`message ${id}`)));
    const seqs = backlog.filter(isMessage).map((e) => e.seq);
    for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBeGreaterThan(seqs[i - 1]!);
  });

  it("sends Bob's read receipt to Alice, and each message was reported delivered exactly once", async () => {
    const refs = ["a1", "a2", "a21"].map((id) => ({ device: 1, id }));
    const answer = await bob.read("phone", { type: "read", id: "r1", to: aliceDevice.session.userId, refs });
    expect(answer.frame).toMatchObject({ type: "sent", id: "r1" });
    expect(answer.frame).not.toHaveProperty("dropped");

    const { found, before } = await alice.until("phone", { kind: "receipt", receipt: "read" });
    noteDelivered(before);
    expect(found.envelope).toMatchObject({ kind: "receipt", receipt: "read", from: bobPrimary.session.userId, fromDevice: 1, refs });

    // Delivered receipts for the 20 later messages may still be on their way: collect until all are in.
    const all = ["a1", ...Array.from({ length: 20 }, (_, i) => `a${i + 2}`)];
    while (!all.every((id) => deliveredRefs.includes(id))) {
      const { found: more, before: earlier } = await alice.until("phone", { kind: "receipt", receipt: "delivered" });
      noteDelivered([...earlier, more]);
    }
    expect([...deliveredRefs].sort()).toEqual([...all].sort());
  });
});
