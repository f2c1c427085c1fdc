/**
 * Accounts, tokens, keys and identities through the SDK against the real server: registration in two
 * steps, device lists, token refresh before expiry and after a 401, prekey top-up and rotation (late
 * messages still decrypt), changed identity keys held until trusted, safety numbers, logging out.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MemoryStore, Relay, type MessageRecord, type RelayEvents } from "../../../client/node";
import type { AccountRecord } from "../../../client/store/types";
import { startRelay, type RelayServer } from "../support/server";
import { api } from "../support/relay-client";
import type { PreKeyBundleResponse, PreKeyCounts } from "../../../src/protocol/http";
import { eventually } from "../support/eventually";

const FAST = { reconnectBaseMs: 50, reconnectMaxMs: 500, retryDelayMs: 100 };


interface Device {
  relay: Relay;
  store: MemoryStore;
  messages: MessageRecord[];
  identityChanges: RelayEvents["identityChanged"][];
  loggedOut: unknown[];
}

describe("accounts, tokens, keys and identities", () => {
  let server: RelayServer;
  const open: Relay[] = [];

  const code = (phone: string) => eventually(() => /(\d{6})/.exec(server.sms.findLast((m) => m.to === phone)?.text ?? "")?.[1]);

  function observe(relay: Relay, store: MemoryStore): Device {
    const d: Device = { relay, store, messages: [], identityChanges: [], loggedOut: [] };
    relay.on("message", (m) => d.messages.push(m));
    relay.on("identityChanged", (e) => d.identityChanges.push(e));
    relay.on("loggedOut", (e) => d.loggedOut.push(e));
    open.push(relay);
    return d;
  }

  async function register(phone: string, tuning: Record<string, number> = {}): Promise<Device> {
    const store = new MemoryStore();
    const relay = await Relay.register({ url: server.url, phone, store, tuning: { ...FAST, ...tuning }, code });
    await relay.opened();
    return observe(relay, store);
  }

  async function link(primary: Device): Promise<Device> {
    const store = new MemoryStore();
    const { code: linkCode } = await primary.relay.linkDevice();
    const relay = await Relay.link({ url: server.url, code: linkCode, store, tuning: FAST, name: "tablet" });
    await relay.opened();
    return observe(relay, store);
  }

  const token = async (d: Device) => ((await d.store.get("meta", "account")) as AccountRecord).session.accessToken;

  beforeAll(async () => {
    server = await startRelay();
  });

  afterAll(async () => {
    await Promise.all(open.map((r) => r.close()));
    await server?.stop();
  });

  it("registers in two steps (code request, then verify) and lists, links and removes devices", async () => {
    const store = new MemoryStore();
    const pending = await Relay.register({ url: server.url, phone: "+14155550131", store, tuning: FAST });
    expect(pending.expiresAt).toBeGreaterThan(Date.now());
    const relay = await pending.verify(await code("+14155550131"));
    const primary = observe(relay, store);
    expect(relay.deviceId).toBe(1);
    const second = await link(primary);
    expect((await relay.devices()).map((d) => [d.deviceId, d.name])).toEqual([
      [1, null],
      [2, "tablet"],
    ]);
    await relay.removeDevice(2);
    await eventually(() => second.loggedOut.length > 0);
    expect((await relay.devices()).map((d) => d.deviceId)).toEqual([1]);
    await expect(Relay.register({ url: server.url, phone: "+14155550131", store, tuning: FAST, code })).rejects.toThrow(/already holds/);
  });

  it("refreshes the access token before it expires and after a 401, persisting the rotated session", async () => {
    const d = await register("+14155550132");
    await d.relay.close();
    const account = (await d.store.get("meta", "account")) as AccountRecord;

    // Expired: refreshed before the connect.
    await d.store.write([{ table: "meta", key: "account", value: { ...account, session: { ...account.session, accessTokenExpiresAt: Date.now() } } }]);
    const again = observe(await Relay.connect({ store: d.store, tuning: FAST }), d.store);
    await again.relay.opened();
    const renewed = (await d.store.get("meta", "account")) as AccountRecord;
    expect(renewed.session.refreshToken).not.toBe(account.session.refreshToken);
    expect(renewed.session.accessTokenExpiresAt).toBeGreaterThan(Date.now() + 60_000);
    await again.relay.close();

    // Refused (a token the server does not accept, though not expired by the clock): the socket closes 4401,
    // the SDK refreshes and reconnects; an HTTP call gets a 401, refreshes and retries.
    await d.store.write([{ table: "meta", key: "account", value: { ...renewed, session: { ...renewed.session, accessToken: "not.a.token" } } }]);
    const third = observe(await Relay.connect({ store: d.store, tuning: FAST }), d.store);
    await third.relay.opened();
    expect(await token(third)).not.toBe("not.a.token");
    const current = (await d.store.get("meta", "account")) as AccountRecord;
    await third.relay.close();
    await d.store.write([{ table: "meta", key: "account", value: { ...current, session: { ...current.session, accessToken: "still.not.valid" } } }]);
    const fourth = observe(await Relay.connect({ store: d.store, tuning: FAST }), d.store);
    expect((await fourth.relay.devices()).length).toBe(1);
    expect(fourth.loggedOut).toEqual([]);
  });

  it("tops up one-time prekeys when the server runs low and rotates the signed and last-resort prekeys; late messages still decrypt", async () => {
    const alice = await register("+14155550133", { preKeyBatch: 30, preKeyMinimum: 20 });
    const bob = await register("+14155550134");
    const counts = async () => (await api<PreKeyCounts>(server.url, "GET", "/v1/keys", { token: await token(alice) })).json;
    await eventually(async () => (await counts()).preKeys === 30);
    // Eleven claims leave 19 of each kind: below the minimum.
    for (let i = 0; i < 11; i++) await api(server.url, "GET", `/v1/keys/${alice.relay.userId}`, { token: await token(bob) });
    expect(await counts()).toEqual({ preKeys: 19, kyberPreKeys: 19 });
    expect(await alice.relay.maintainKeys()).toMatchObject({ preKeys: 30, kyberPreKeys: 30, rotated: false });
    expect(await counts()).toEqual({ preKeys: 30, kyberPreKeys: 30 });
    expect(await alice.relay.maintainKeys()).toMatchObject({ preKeys: 0, kyberPreKeys: 0 });

    // Bob fetches Alice's bundle (through the safety number, which needs her primary key) before she rotates...
    await bob.relay.safetyNumber(alice.relay.userId);
    const before = (await api<PreKeyBundleResponse>(server.url, "GET", `/v1/keys/${alice.relay.userId}`, { token: await token(bob) })).json.devices[0]!;
    expect((await alice.relay.maintainKeys({ rotate: true })).rotated).toBe(true);
    const after = (await api<PreKeyBundleResponse>(server.url, "GET", `/v1/keys/${alice.relay.userId}`, { token: await token(bob) })).json.devices[0]!;
    expect(after.signedPreKey.keyId).not.toBe(before.signedPreKey.keyId);
    // ...and his first message, built on the old signed prekey, still decrypts.
    const late = await bob.relay.send(alice.relay.userId, "built on the old signed prekey");
    const got = await eventually(() => alice.messages.find((m) => m.id === late.id));
    expect(got.body).toEqual({ text: "built on the old signed prekey" });
  });

  it("a changed identity key is held until trusted; safety numbers agree on every device and change with the key", async () => {
    const alice = await register("+14155550135");
    const alice2 = await link(alice);
    const bob = await register("+14155550136");
    const hi = await alice.relay.send(bob.relay.userId, "hi");
    await eventually(() => bob.messages.some((m) => m.id === hi.id));

    const number = await alice.relay.safetyNumber(bob.relay.userId);
    expect(number).toMatch(/^\d{60}$/);
    expect(await alice2.relay.safetyNumber(bob.relay.userId)).toBe(number);
    expect(await bob.relay.safetyNumber(alice.relay.userId)).toBe(number);

    // Bob re-registers his number on a new phone: a new identity key for device 1.
    await bob.relay.close();
    const newBob = await register("+14155550136");
    expect(newBob.relay.userId).toBe(bob.relay.userId);

    // Alice's send meets the new key: not silently accepted.
    const held = await alice.relay.send(bob.relay.userId, "are you still you?");
    await eventually(() => alice.identityChanges.some((e) => e.userId === bob.relay.userId && e.deviceId === 1));
    await new Promise((r) => setTimeout(r, 300));
    expect((await alice.relay.message(held))?.status).toBe("pending");
    expect(newBob.messages.some((m) => m.id === held.id)).toBe(false);

    // New Bob's message to Alice is held too, not shown.
    const fromNewBob = await newBob.relay.send(alice.relay.userId, "new phone, same me");
    // Stored (and acknowledged) by Alice's devices, so it is delivered, but held from the app.
    await eventually(async () => (await newBob.relay.message(fromNewBob))?.status === "delivered");
    await new Promise((r) => setTimeout(r, 300));
    expect(alice.messages.some((m) => m.id === fromNewBob.id)).toBe(false);
    expect(await alice.relay.safetyNumber(bob.relay.userId)).toBe(number);

    // Alice compares the new safety number and accepts it: the held message shows, the waiting send goes out.
    await alice.relay.trustIdentity(bob.relay.userId);
    const shown = await eventually(() => alice.messages.find((m) => m.id === fromNewBob.id));
    expect(shown.body).toEqual({ text: "new phone, same me" });
    await eventually(() => newBob.messages.find((m) => m.id === held.id));
    const changed = await alice.relay.safetyNumber(bob.relay.userId);
    expect(changed).not.toBe(number);
    expect(await newBob.relay.safetyNumber(alice.relay.userId)).toBe(changed);
  });

  it("logging out a linked device removes it from the account and empties its store", async () => {
    const carol = await register("+14155550137");
    const tablet = await link(carol);
    await tablet.relay.logout();
    expect(await tablet.store.list("meta")).toEqual([]);
    expect((await carol.relay.devices()).map((d) => d.deviceId)).toEqual([1]);
  });
});
