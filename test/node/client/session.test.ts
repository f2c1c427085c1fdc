/**
 * The session API between two devices running our SDK: long conversations, out-of-order delivery,
 * refusals that change nothing, identity changes, prekey bookkeeping, expiry, serialization and restarts.
 */
import { describe, expect, it } from "vitest";
import {
  DuplicateMessageError,
  InMemoryProtocolStore,
  InvalidMessageError,
  InvalidPreKeyIdError,
  InvalidSessionError,
  NoSessionError,
  ProtocolError,
  SessionRecord,
  UntrustedIdentityError,
  bundleFromDeviceBundle,
  decrypt,
  encrypt,
  generateDeviceKeys,
  hasSession,
  processPreKeyBundle,
  type CiphertextMessage,
} from "../../../client/crypto";
import { decodePreKeySignalMessage, encodePreKeySignalMessage } from "../../../client/crypto/messages";
import { ratchetEncrypt } from "../../../client/crypto/ratchet";
import { RelayDevice, newAddress, text, utf8 } from "./libsignal-stores";

async function started(oneTime = true) {
  const alice = new RelayDevice();
  const bob = new RelayDevice();
  await processPreKeyBundle(alice.store, bob.address, bob.bundle(oneTime));
  const toBob = (s: string) => encrypt(alice.store, bob.address, utf8(s));
  const toAlice = (s: string) => encrypt(bob.store, alice.address, utf8(s));
  const bobReads = async (m: CiphertextMessage) => text(await decrypt(bob.store, alice.address, m));
  const aliceReads = async (m: CiphertextMessage) => text(await decrypt(alice.store, bob.address, m));
  return { alice, bob, toBob, toAlice, bobReads, aliceReads };
}

const snapshot = async (store: InMemoryProtocolStore) => ({
  sessions: [...store.sessions.entries()].map(([k, v]) => [k, Buffer.from(v).toString("base64")]),
  preKeys: [...store.preKeys.keys()],
  kyber: [...store.kyberPreKeys.keys()],
  identities: [...store.identities.entries()].map(([k, v]) => [k, Buffer.from(v).toString("base64")]),
});

describe("sessions between two SDK devices", () => {
  for (const oneTime of [true, false]) {
    it(`round-trip over 100 turns with bursts (${oneTime ? "with" : "without"} a one-time prekey)`, async () => {
      const s = await started(oneTime);
      let sent = 0;
      for (let turn = 0; turn < 100; turn++) {
        const burst = 1 + ((turn * 7) % 4);
        for (let i = 0; i < burst; i++, sent++) {
          const body = `t${turn}.${i} ${"é".repeat(turn % 17)}`;
          if (turn % 2 === 0) expect(await s.bobReads(await s.toBob(body))).toBe(body);
          else expect(await s.aliceReads(await s.toAlice(body))).toBe(body);
        }
      }
      expect(sent).toBeGreaterThan(200);
      expect(await s.bobReads(await s.toBob(""))).toBe(""); // the empty plaintext too
    });
  }

  it("reads shuffled messages from several chains, and refuses each one twice", async () => {
    const s = await started();
    await s.bobReads(await s.toBob("hello"));
    const held: { body: string; m: CiphertextMessage }[] = [];
    for (let chain = 0; chain < 4; chain++) {
      for (let i = 0; i < 6; i++) held.push({ body: `c${chain}m${i}`, m: await s.toBob(`c${chain}m${i}`) });
      await s.aliceReads(await s.toAlice(`reply ${chain}`)); // Bob answers: Alice's next chain follows a DH step
    }
    const order = held.map((_, i) => i).sort((x, y) => ((x * 31) % 11) - ((y * 31) % 11) || y - x);
    for (const i of order) expect(await s.bobReads(held[i]!.m)).toBe(held[i]!.body);
    for (const i of order.slice(0, 5)) await expect(s.bobReads(held[i]!.m)).rejects.toThrow(DuplicateMessageError);
    expect(await s.bobReads(await s.toBob("still fine"))).toBe("still fine");
  });

  it("refuses tampered messages and replays without changing any state", async () => {
    const s = await started();
    const first = await s.toBob("first");
    for (const at of [5, first.body.length - 1, first.body.length - 20]) {
      const before = await snapshot(s.bob.store);
      await expect(s.bobReads({ type: 3, body: first.body.map((b, i) => (i === at ? b ^ 0x10 : b)) })).rejects.toThrow(ProtocolError);
      expect(await snapshot(s.bob.store)).toEqual(before);
    }
    expect(await s.bobReads(first)).toBe("first");
    await s.aliceReads(await s.toAlice("ack"));
    const m = await s.toBob("genuine");
    for (let at = 0; at < m.body.length; at += 3) {
      const before = await snapshot(s.bob.store);
      await expect(s.bobReads({ type: 2, body: m.body.map((b, i) => (i === at ? b ^ 0x04 : b)) }), `byte ${at}`).rejects.toThrow(ProtocolError);
      expect(await snapshot(s.bob.store)).toEqual(before);
    }
    await expect(s.bobReads({ type: 2, body: m.body.subarray(0, m.body.length - 1) })).rejects.toThrow(InvalidMessageError);
    await expect(s.bobReads({ type: 7 as 2, body: m.body })).rejects.toThrow("unknown ciphertext type 7");
    expect(await s.bobReads(m)).toBe("genuine");
    const before = await snapshot(s.bob.store);
    await expect(s.bobReads(m)).rejects.toThrow(DuplicateMessageError);
    await expect(s.bobReads(first)).rejects.toThrow(DuplicateMessageError);
    expect(await snapshot(s.bob.store)).toEqual(before);
  });

  it("simultaneous initiation converges on one session", async () => {
    const alice = new RelayDevice();
    const bob = new RelayDevice();
    await processPreKeyBundle(alice.store, bob.address, bob.bundle(true));
    await processPreKeyBundle(bob.store, alice.address, alice.bundle(true));
    const a1 = await encrypt(alice.store, bob.address, utf8("a1"));
    const b1 = await encrypt(bob.store, alice.address, utf8("b1"));
    expect(text(await decrypt(bob.store, alice.address, a1))).toBe("a1");
    expect(text(await decrypt(alice.store, bob.address, b1))).toBe("b1");
    for (let i = 0; i < 6; i++) {
      expect(text(await decrypt(bob.store, alice.address, await encrypt(alice.store, bob.address, utf8(`a${i}`))))).toBe(`a${i}`);
      expect(text(await decrypt(alice.store, bob.address, await encrypt(bob.store, alice.address, utf8(`b${i}`))))).toBe(`b${i}`);
    }
    const aliceRecord = SessionRecord.deserialize((await alice.store.loadSession(bob.address))!);
    const bobRecord = SessionRecord.deserialize((await bob.store.loadSession(alice.address))!);
    expect(aliceRecord.current!.aliceBaseKey).toEqual(bobRecord.current!.aliceBaseKey);
    expect(aliceRecord.previous).toHaveLength(1);
  });

  it("concurrent encryptions on one store never reuse a key", async () => {
    const s = await started();
    await s.bobReads(await s.toBob("hello"));
    await s.aliceReads(await s.toAlice("ack"));
    const messages = await Promise.all(Array.from({ length: 20 }, (_, i) => s.toBob(`parallel ${i}`)));
    const read = await Promise.all(messages.map((m) => s.bobReads(m)));
    expect(read.sort()).toEqual(Array.from({ length: 20 }, (_, i) => `parallel ${i}`).sort());
  });
});

describe("identities and prekeys", () => {
  it("refuses a bundle whose identity changed until the app trusts the new key", async () => {
    const s = await started();
    await s.bobReads(await s.toBob("hello"));
    const reinstalled = new RelayDevice(s.bob.address); // same address, new identity
    const bundle = reinstalled.bundle(true);
    await expect(processPreKeyBundle(s.alice.store, s.bob.address, bundle)).rejects.toThrow(UntrustedIdentityError);
    // A message from the new identity is refused too.
    await processPreKeyBundle(reinstalled.store, s.alice.address, s.alice.bundle(true));
    await expect(decrypt(s.alice.store, s.bob.address, await encrypt(reinstalled.store, s.alice.address, utf8("it's me")))).rejects.toThrow(UntrustedIdentityError);
    // The app approves the new key: it is saved, and the bundle is accepted.
    expect(await s.alice.store.saveIdentity(s.bob.address, reinstalled.identityKey)).toBe(true);
    await processPreKeyBundle(s.alice.store, s.bob.address, bundle);
    expect(text(await decrypt(reinstalled.store, s.alice.address, await encrypt(s.alice.store, s.bob.address, utf8("welcome back"))))).toBe("welcome back");
  });

  it("spends one-time keys, keeps the last-resort Kyber key, and refuses a replayed handshake", async () => {
    const alice = new RelayDevice();
    const bob = new RelayDevice(newAddress(), { preKeys: 1, kyberPreKeys: 1 });
    await processPreKeyBundle(alice.store, bob.address, bob.bundle(true));
    const m = await encrypt(alice.store, bob.address, utf8("one-time"));
    const header = decodePreKeySignalMessage(m.body);
    expect([header.preKeyId, header.kyberPreKeyId]).toEqual([1, 1]);
    await decrypt(bob.store, alice.address, m);
    expect(bob.store.preKeys.has(1)).toBe(false);
    expect(bob.store.kyberPreKeys.has(1)).toBe(false);
    // With the session gone, the same message names keys that no longer exist.
    bob.store.sessions.clear();
    await expect(decrypt(bob.store, alice.address, m)).rejects.toThrow(InvalidPreKeyIdError);

    // The last-resort key (id 2) survives use, but one base key may use it only once.
    const carol = new RelayDevice();
    await processPreKeyBundle(carol.store, bob.address, bob.bundle(true));
    const lr = await encrypt(carol.store, bob.address, utf8("last resort"));
    expect(decodePreKeySignalMessage(lr.body).kyberPreKeyId).toBe(2);
    expect(decodePreKeySignalMessage(lr.body).preKeyId).toBeUndefined();
    expect(text(await decrypt(bob.store, carol.address, lr))).toBe("last resort");
    expect(bob.store.kyberPreKeys.has(2)).toBe(true);
    await expect(decrypt(bob.store, carol.address, lr)).rejects.toThrow(DuplicateMessageError);
    bob.store.sessions.clear();
    await expect(decrypt(bob.store, carol.address, lr)).rejects.toThrow("reused base key");
  });

  it("takes a bundle in the server's DeviceBundle shape", async () => {
    const { keys, body } = generateDeviceKeys({ preKeys: 2, kyberPreKeys: 2 });
    expect(body.kyberLastResortPreKey.keyId).toBe(3);
    const bundle = bundleFromDeviceBundle({
      deviceId: 1,
      registrationId: body.registrationId,
      identityKey: body.identityKey,
      signedPreKey: body.signedPreKey,
      kyberPreKey: { ...body.kyberPreKeys[0]!, lastResort: false },
      preKey: body.preKeys[0]!,
    });
    expect(bundle.identityKey).toEqual(keys.identity.publicKey);
    const alice = new RelayDevice();
    const bob = new RelayDevice(newAddress(), { keys });
    await processPreKeyBundle(alice.store, bob.address, bundle);
    expect(text(await decrypt(bob.store, alice.address, await encrypt(alice.store, bob.address, utf8("hi"))))).toBe("hi");
  });

  it("has no session to use before a bundle, or once an unanswered one is 30 days old", async () => {
    const alice = new RelayDevice();
    const bob = new RelayDevice();
    await expect(encrypt(alice.store, bob.address, utf8("x"))).rejects.toThrow(NoSessionError);
    await expect(decrypt(alice.store, bob.address, { type: 2, body: new Uint8Array(60) })).rejects.toThrow(InvalidMessageError);
    const t0 = Date.UTC(2026, 0, 1);
    await processPreKeyBundle(alice.store, bob.address, bob.bundle(true), { now: t0 });
    const day = 24 * 3600 * 1000;
    expect(await hasSession(alice.store, bob.address, { now: t0 + 30 * day })).toBe(true);
    await encrypt(alice.store, bob.address, utf8("x"), { now: t0 + 30 * day });
    expect(await hasSession(alice.store, bob.address, { now: t0 + 31 * day })).toBe(false);
    await expect(encrypt(alice.store, bob.address, utf8("x"), { now: t0 + 31 * day })).rejects.toThrow("stale unacknowledged session");
  });
});

describe("sessions with one's own other device", () => {
  it("are self sessions (same identity key and user id): no forward-jump limit, as in libsignal", async () => {
    const phone = new RelayDevice();
    const laptop = new RelayDevice({ userId: phone.address.userId, deviceId: 2 }, { keys: generateDeviceKeys({ identity: phone.keys.identity }).keys });
    await processPreKeyBundle(phone.store, laptop.address, laptop.bundle(true));
    expect(text(await decrypt(laptop.store, phone.address, await encrypt(phone.store, laptop.address, utf8("sync"))))).toBe("sync");
    const record = SessionRecord.deserialize((await phone.store.loadSession(laptop.address))!);
    expect(record.current!.selfSession).toBe(true);
    expect(SessionRecord.deserialize((await laptop.store.loadSession(phone.address))!).current!.selfSession).toBe(true);
    // 26,000 messages ahead (straight on the ratchet): accepted between one's own devices.
    let last: Uint8Array = new Uint8Array(0);
    for (let i = 0; i <= 26_000; i++) last = ratchetEncrypt(record.current!, utf8(`n${i}`));
    await phone.store.storeSession(laptop.address, record.serialize());
    expect(text(await decrypt(laptop.store, phone.address, { type: 3, body: await wrapLikeEncrypt(phone, laptop, last) }))).toBe("n26000");
  }, 60_000);
});

/** The PreKeySignalMessage `encrypt` would build around an inner SignalMessage (the session is still unanswered). */
async function wrapLikeEncrypt(from: RelayDevice, to: RelayDevice, inner: Uint8Array): Promise<Uint8Array> {
  const state = SessionRecord.deserialize((await from.store.loadSession(to.address))!).current!;
  const pending = state.pending!;
  return encodePreKeySignalMessage({ registrationId: state.localRegistrationId, ...(pending.preKeyId !== undefined ? { preKeyId: pending.preKeyId } : {}), signedPreKeyId: pending.signedPreKeyId, kyberPreKeyId: pending.kyberPreKeyId, kyberCiphertext: pending.kyberCiphertext, baseKey: pending.baseKey, identityKey: state.localIdentityKey, message: inner });
}

describe("session records", () => {
  it("survive serialization, and a device restarted from its stored bytes carries on", async () => {
    const s = await started();
    for (let i = 0; i < 5; i++) {
      await s.bobReads(await s.toBob(`a${i}`));
      await s.aliceReads(await s.toAlice(`b${i}`));
    }
    const skipped = [await s.toBob("skipped 1"), await s.toBob("skipped 2")];
    await s.bobReads(await s.toBob("ahead"));
    const bytes = (await s.bob.store.loadSession(s.alice.address))!;
    const record = SessionRecord.deserialize(bytes);
    expect(record.current!.receivers.some((c) => c.skipped.length === 2)).toBe(true);
    expect(SessionRecord.deserialize(record.serialize())).toEqual(record);
    expect(record.serialize()).toEqual(bytes);

    // "Restart" Bob: a new store holding only what the old one persisted.
    const restarted = new InMemoryProtocolStore({ address: s.bob.address, identity: s.bob.keys.identity, registrationId: s.bob.keys.registrationId });
    for (const [k, v] of s.bob.store.sessions) restarted.sessions.set(k, v);
    for (const [k, v] of s.bob.store.identities) restarted.identities.set(k, v);
    expect(text(await decrypt(restarted, s.alice.address, skipped[1]!))).toBe("skipped 2");
    expect(text(await decrypt(restarted, s.alice.address, skipped[0]!))).toBe("skipped 1");
    expect(text(await decrypt(s.alice.store, s.bob.address, await encrypt(restarted, s.alice.address, utf8("back"))))).toBe("back");
  });

  it("refuse corrupt bytes with InvalidSessionError", async () => {
    const s = await started();
    const good = JSON.parse(new TextDecoder().decode((await s.alice.store.loadSession(s.bob.address))!));
    const bad = (mutate: (j: typeof good) => void) => {
      const j = structuredClone(good);
      mutate(j);
      return new TextEncoder().encode(JSON.stringify(j));
    };
    const cases: [Uint8Array, RegExp][] = [
      [new Uint8Array([1, 2, 3]), /not JSON/],
      [bad((j) => (j.format = 9)), /unknown format 9/],
      [bad((j) => (j.current.rootKey = "AAAA")), /current.rootKey must be 32 bytes/],
      [bad((j) => (j.current.sender.index = -1)), /current.sender.index must be a non-negative integer/],
      [bad((j) => (j.current.spqr.direction = "X")), /direction must be A2B or B2A/],
      [bad((j) => (j.current.receivers = {})), /receivers must be an array/],
      [bad((j) => (j.current.pending.kyberCiphertext = "!")), /kyberCiphertext must be base64/],
    ];
    for (const [bytes, reason] of cases) {
      expect(() => SessionRecord.deserialize(bytes)).toThrow(InvalidSessionError);
      expect(() => SessionRecord.deserialize(bytes)).toThrow(reason);
    }
    await s.alice.store.storeSession(s.bob.address, cases[2]![0]);
    await expect(s.toBob("x")).rejects.toThrow(InvalidSessionError);
  });
});
