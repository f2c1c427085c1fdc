/**
 * A client killed mid-conversation (SIGKILL, no shutdown of any kind) and restarted as a new Relay over
 * the same SqliteStore file loses nothing: everything it had queued is delivered exactly once, everything
 * sent to it ends up in its history exactly once and in order, and its sessions go on.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IndexedDbStore, MemoryStore, Relay, SqliteStore, type MessageRecord } from "../../../client/node";
import { IDBFactory } from "fake-indexeddb";
import "fake-indexeddb/auto";
import { eventually as eventuallyWithin } from "../support/eventually";
import { startRelay, type RelayServer } from "../support/server";

const FAST = { reconnectBaseMs: 50, reconnectMaxMs: 500, retryDelayMs: 100 };
const CLIENT_ENTRY = fileURLToPath(new URL("../../../client/node.ts", import.meta.url));
const eventually = <T>(probe: () => T | undefined | false | Promise<T | undefined | false>) => eventuallyWithin(probe, 30_000);

/** The client program the child process runs: Alice on her SQLite file, sending to Bob every 15 ms and reporting on stdout. */
const CHILD_SOURCE = `
import { Relay, SqliteStore } from ${JSON.stringify(CLIENT_ENTRY)};
const [dbPath, bobId] = process.argv.slice(2);
const relay = await Relay.connect({ store: new SqliteStore(dbPath), tuning: ${JSON.stringify(FAST)} });
const say = (line) => process.stdout.write(JSON.stringify(line) + "\\n");
relay.on("message", (m) => say({ received: m.id }));
relay.on("error", (e) => process.stderr.write(String(e && e.stack || e) + "\\n"));
await relay.opened();
say({ ready: true });
let i = 0;
for (;;) {
  const n = i++;
  const m = await relay.send(bobId, "alice " + n);
  say({ queued: m.id, n });
  await new Promise((r) => setTimeout(r, 15));
}
`;

describe("restarting a client over its persistent store", () => {
  let server: RelayServer;
  let dir: string;
  let bob: Relay;
  let alice: Relay | undefined;
  let child: ChildProcess | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "relay-sdk-restart-"));
    server = await startRelay();
  });

  afterAll(async () => {
    child?.kill("SIGKILL");
    await alice?.close();
    await bob?.close();
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("killed mid-conversation (SIGKILL) and restarted over the same SQLite file, it loses nothing either way and keeps its sessions", async () => {
    const code = (phone: string) => eventually(() => /(\d{6})/.exec(server.sms.findLast((m) => m.to === phone)?.text ?? "")?.[1]);
    const dbPath = join(dir, "alice.db");
    const aliceStore = new SqliteStore(dbPath);
    const first = await Relay.register({ url: server.url, phone: "+14155550141", store: aliceStore, tuning: FAST, code });
    const aliceId = first.userId;
    await first.close();
    await aliceStore.close();

    bob = await Relay.register({ url: server.url, phone: "+14155550142", store: new MemoryStore(), tuning: FAST, code });
    const bobGot: MessageRecord[] = [];
    bob.on("message", (m) => bobGot.push(m));
    await bob.opened();

    // Alice runs in her own process.
    const entry = join(dir, "child.ts");
    await writeFile(entry, CHILD_SOURCE);
    await build({ entryPoints: [entry], bundle: true, platform: "node", format: "esm", target: "node22", outfile: join(dir, "child.mjs"), logLevel: "silent" });
    child = spawn(process.execPath, ["--disable-warning=ExperimentalWarning", join(dir, "child.mjs"), dbPath, bob.userId], { stdio: ["ignore", "pipe", "pipe"] });
    const queued: string[] = [];
    const receivedByChild: string[] = [];
    let ready = false;
    const stderr: string[] = [];
    child.stderr!.on("data", (c: Buffer) => stderr.push(c.toString()));
    let buffer = "";
    child.stdout!.on("data", (chunk: Buffer) => {
      buffer += chunk.toString();
      const lines = buffer.split("\n");
      buffer = lines.pop()!;
      for (const line of lines) {
        const event = JSON.parse(line) as { queued?: string; received?: string; ready?: boolean };
        if (event.queued) queued.push(event.queued);
        if (event.received) receivedByChild.push(event.received);
        if (event.ready) ready = true;
      }
    });
    await eventually(() => ready || child!.exitCode !== null);
    expect(stderr.join("")).toBe("");

    // Bob talks back while Alice's process runs...
    const bobSent: string[] = [];
    let talking = true;
    const talk = (async () => {
      for (let i = 0; talking; i++) {
        bobSent.push((await bob.send(aliceId, `bob ${i}`)).id);
        await new Promise((r) => setTimeout(r, 15));
      }
    })();
    await eventually(() => queued.length >= 40 && receivedByChild.length >= 10 && bobGot.length >= 10);

    // ...and kill it mid-conversation, with sends in flight both ways.
    child.kill("SIGKILL");
    await new Promise((resolve) => child!.once("exit", resolve));
    const queuedBeforeKill = [...queued];
    expect(bobGot.length).toBeLessThan(queuedBeforeKill.length + 5);
    await new Promise((r) => setTimeout(r, 200));
    talking = false;
    await talk;

    // A new Relay over the same file.
    const store = new SqliteStore(dbPath);
    const carried = (await store.list("outbox")).length;
    const storedBeforeKill = (await store.list("messages")).filter((e) => e.value.direction === "incoming").length;
    alice = await Relay.connect({ store, tuning: FAST });
    const aliceGot: MessageRecord[] = [];
    alice.on("message", (m) => aliceGot.push(m));
    await alice.opened();

    // Everything Alice had queued reaches Bob, once.
    await eventually(() => queuedBeforeKill.every((id) => bobGot.some((m) => m.id === id)));
    await eventually(async () => (await alice!.pending()).length === 0);
    const bobIds = bobGot.map((m) => m.id);
    expect(new Set(bobIds).size).toBe(bobIds.length);

    // Everything Bob sent is in Alice's history, once, in order.
    for (const id of bobSent) await eventually(async () => (await bob.message({ from: bob.userId, fromDevice: 1, id }))?.status !== "pending");
    await eventually(async () => {
      const history = await alice!.messages(bob.userId, { limit: 10_000 });
      const incoming = history.filter((m) => m.direction === "incoming").map((m) => m.id);
      return bobSent.every((id) => incoming.includes(id));
    });
    const history = await alice.messages(bob.userId, { limit: 10_000 });
    const incoming = history.filter((m) => m.direction === "incoming");
    expect(incoming.map((m) => m.id)).toEqual(bobSent);
    expect(incoming.map((m) => ("text" in m.body ? m.body.text : ""))).toEqual(bobSent.map((_, i) => `bob ${i}`));
    // Those the killed process had not stored arrive now; those it had stored are not shown twice.
    expect(aliceGot.filter((m) => receivedByChild.includes(m.id))).toEqual([]);

    console.log(`killed with ${carried} sends in the outbox; ${storedBeforeKill} of Bob's ${bobSent.length} messages stored before the kill, ${aliceGot.length} arrived after the restart`);

    // Sessions go on both ways.
    const after = await alice.send(bob.userId, "after the restart");
    await eventually(() => bobGot.some((m) => m.id === after.id && "text" in m.body && m.body.text === "after the restart"));
    const reply = await bob.send(alice.userId, "welcome back");
    await eventually(() => aliceGot.some((m) => m.id === reply.id));
  });

  it("a browser-style client on IndexedDB keeps account, sessions and history across a restart", async () => {
    const code = (phone: string) => eventually(() => /(\d{6})/.exec(server.sms.findLast((m) => m.to === phone)?.text ?? "")?.[1]);
    const factory = new IDBFactory();
    let store = await IndexedDbStore.open("carol", factory);
    let carol = await Relay.register({ url: server.url, phone: "+14155550143", store, tuning: FAST, code });
    const got: MessageRecord[] = [];
    const first = await carol.send(bob.userId, "from IndexedDB");
    await eventually(async () => (await bob.message({ from: carol.userId, fromDevice: 1, id: first.id })) !== undefined);
    const reply = await bob.send(carol.userId, "hello IndexedDB");
    await eventually(async () => (await carol.message({ from: bob.userId, fromDevice: 1, id: reply.id })) !== undefined);
    await carol.close();
    await store.close();

    store = await IndexedDbStore.open("carol", factory);
    carol = await Relay.connect({ store, tuning: FAST });
    carol.on("message", (m) => got.push(m));
    expect((await carol.messages(bob.userId)).map((m) => m.id)).toEqual([first.id, reply.id]);
    const again = await bob.send(carol.userId, "still there?");
    await eventually(() => got.some((m) => m.id === again.id));
    const answer = await carol.send(bob.userId, "yes");
    await eventually(async () => (await carol.message(answer))?.status === "delivered");
    await carol.close();
    await store.close();
  });
});
