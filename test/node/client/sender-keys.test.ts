/**
 * client/crypto/sender-keys.ts on its own: known answers for fixed inputs (the expected bytes were produced by
 * libsignal 0.103 from the same inputs), the record's storage round trip, chain bookkeeping and refusals.
 */
import { hexToBytes } from "@noble/hashes/utils.js";
import { describe, expect, it } from "vitest";
import { fromBase64, toBase64 } from "../../../src/protocol/base64";
import { xeddsaVerify } from "../../../src/protocol/keys";
import {
  InMemorySenderKeyStore,
  MAX_MESSAGE_KEYS,
  MAX_SENDER_KEY_STATES,
  SenderKeyError,
  SenderKeyRecord,
  SenderKeyRecordFormatError,
  createSenderKeyDistributionMessage,
  groupDecrypt,
  groupEncrypt,
  newDistributionId,
  parseSenderKeyDistributionMessage,
  parseSenderKeyMessage,
  processSenderKeyDistributionMessage,
  senderKeyName,
  type SenderAddress,
  type SenderKeyErrorCode,
  type SenderKeyStore,
} from "../../../client/crypto/sender-keys";
import { encodeSenderKeyDistributionMessage } from "../../../client/crypto/sender-keys-wire";

const hex = (s: string) => hexToBytes(s);
const text = (s: string) => new TextEncoder().encode(s);

// Fixed inputs and what libsignal 0.103 makes of them.
const FIXED = {
  sender: { userId: "8c5e3f4a-1b2c-4d5e-8f90-a1b2c3d4e5f6", deviceId: 1 },
  distributionId: "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
  chainId: 0x12345678,
  chainKey: Uint8Array.from({ length: 32 }, (_, i) => i),
  signingPrivate: hex("404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f"),
  signingPublic: hex("0579a631eede1bf9c98f12032cdeadd0e7a079398fc786b88cc846ec89af85a51a"),
  skdm: hex(
    "330a100f1e2d3c4b5a69788796a5b4c3d2e1f010f8acd1910118002220000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f2a210579a631eede1bf9c98f12032cdeadd0e7a079398fc786b88cc846ec89af85a51a",
  ),
  record: hex(
    "0a7308f8acd1910112221220000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f1a450a210579a631eede1bf9c98f12032cdeadd0e7a079398fc786b88cc846ec89af85a51a1220404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f2803",
  ),
  /** Signed part (0x33 ‖ protobuf) of the messages for these plaintexts, iterations 0, 1, 2. */
  messages: [
    ["hello", "330a100f1e2d3c4b5a69788796a5b4c3d2e1f010f8acd1910118002210835bfaa6529ae7c3b210fef835ea801c"],
    ["", "330a100f1e2d3c4b5a69788796a5b4c3d2e1f010f8acd191011801221097ed3fe08271d65d6880e9bf7fb11513"],
    [
      "sixteen bytes!!!",
      "330a100f1e2d3c4b5a69788796a5b4c3d2e1f010f8acd19101180222205f2191e9194dd46b01e69eedbdeed5001321a4ae7a6f33b287166c33d0b7cd9d",
    ],
  ] as const,
  recordAfter: hex(
    "0a7508f8acd1910112240803122004428b813675036c07233edd0be13b7c422610a8c3d6ecc7c8fbd85671e47a131a450a210579a631eede1bf9c98f12032cdeadd0e7a079398fc786b88cc846ec89af85a51a1220404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f2803",
  ),
};

/** A store holding fixed sender state, as our own sending record. */
async function fixedSenderStore(): Promise<InMemorySenderKeyStore> {
  const record = new SenderKeyRecord();
  record.addState(FIXED.chainId, { iteration: 0, seed: FIXED.chainKey }, FIXED.signingPublic, FIXED.signingPrivate);
  const store = new InMemorySenderKeyStore();
  await store.storeSenderKey(FIXED.sender, FIXED.distributionId, record);
  return store;
}

async function errorCode(p: Promise<unknown> | (() => unknown)): Promise<SenderKeyErrorCode> {
  try {
    await (typeof p === "function" ? p() : p);
  } catch (e) {
    if (e instanceof SenderKeyError) return e.code;
    throw e;
  }
  throw new Error("expected a SenderKeyError");
}

const address = (deviceId = 1): SenderAddress => ({ userId: crypto.randomUUID(), deviceId });

async function pair() {
  const sender = address();
  const distributionId = newDistributionId();
  const senderStore = new InMemorySenderKeyStore();
  const skdm = await createSenderKeyDistributionMessage(sender, distributionId, senderStore);
  const receiver = new InMemorySenderKeyStore();
  await processSenderKeyDistributionMessage(sender, skdm, receiver);
  return { sender, distributionId, senderStore, receiver, skdm, encrypt: (p: Uint8Array) => groupEncrypt(sender, distributionId, senderStore, p) };
}

describe("sender keys: known answers", () => {
  it("encodes and parses the distribution message", () => {
    const encoded = encodeSenderKeyDistributionMessage({
      distributionId: FIXED.distributionId,
      chainId: FIXED.chainId,
      iteration: 0,
      chainKey: FIXED.chainKey,
      signingKey: FIXED.signingPublic,
    });
    expect(encoded).toEqual(FIXED.skdm);
    expect(parseSenderKeyDistributionMessage(FIXED.skdm)).toEqual({
      distributionId: FIXED.distributionId,
      chainId: FIXED.chainId,
      iteration: 0,
      chainKey: FIXED.chainKey,
      signingKey: FIXED.signingPublic,
    });
  });

  it("a sending record, its distribution message, three messages and the record after them", async () => {
    const store = await fixedSenderStore();
    expect((await store.loadSenderKey(FIXED.sender, FIXED.distributionId))!.serialize()).toEqual(FIXED.record);
    expect(await createSenderKeyDistributionMessage(FIXED.sender, FIXED.distributionId, store)).toEqual(FIXED.skdm);
    const receiver = new InMemorySenderKeyStore();
    await processSenderKeyDistributionMessage(FIXED.sender, FIXED.skdm, receiver);
    const sent = [];
    for (const [plaintext, signed] of FIXED.messages) {
      const message = await groupEncrypt(FIXED.sender, FIXED.distributionId, store, text(plaintext));
      expect(message.subarray(0, -64)).toEqual(hex(signed));
      expect(xeddsaVerify(FIXED.signingPublic, message.subarray(0, -64), message.subarray(-64))).toBe(true);
      sent.push([plaintext, message] as const);
    }
    expect((await store.loadSenderKey(FIXED.sender, FIXED.distributionId))!.serialize()).toEqual(FIXED.recordAfter);
    for (const i of [2, 0, 1]) expect(await groupDecrypt(FIXED.sender, receiver, sent[i]![1])).toEqual(text(sent[i]![0]));
  });

  it("parses a message into its fields, signed part and signature", async () => {
    const store = await fixedSenderStore();
    const message = await groupEncrypt(FIXED.sender, FIXED.distributionId, store, text("hello"));
    const parsed = parseSenderKeyMessage(message);
    expect(parsed).toMatchObject({ distributionId: FIXED.distributionId, chainId: FIXED.chainId, iteration: 0 });
    expect(parsed.ciphertext).toEqual(hex("835bfaa6529ae7c3b210fef835ea801c"));
    expect(parsed.signed).toEqual(hex(FIXED.messages[0][1]));
    expect(parsed.signature).toHaveLength(64);
  });
});

describe("sender keys: the store", () => {
  it("a record survives a round trip through a store that keeps only base64 text", async () => {
    const texts = new Map<string, string>();
    const textStore: SenderKeyStore = {
      async loadSenderKey(sender, id) {
        const t = texts.get(senderKeyName(sender, id));
        return t === undefined ? null : SenderKeyRecord.deserialize(fromBase64(t));
      },
      async storeSenderKey(sender, id, record) {
        texts.set(senderKeyName(sender, id), toBase64(record.serialize()));
      },
    };
    const p = await pair();
    await processSenderKeyDistributionMessage(p.sender, p.skdm, textStore);
    const m = [];
    for (let i = 0; i < 10; i++) m.push(await p.encrypt(text(`m${i}`)));
    for (const i of [9, 3, 0, 5]) expect(await groupDecrypt(p.sender, textStore, m[i]!)).toEqual(text(`m${i}`));
    const record = (await textStore.loadSenderKey(p.sender, p.distributionId))!;
    expect(record.states[0]!.chainKey!.iteration).toBe(10);
    expect(record.states[0]!.messageKeys.map((k) => k.iteration)).toEqual([1, 2, 4, 6, 7, 8]);
    expect(SenderKeyRecord.deserialize(record.serialize()).serialize()).toEqual(record.serialize());
    for (const i of [1, 2, 4, 6, 7, 8]) expect(await groupDecrypt(p.sender, textStore, m[i]!)).toEqual(text(`m${i}`));
    for (const i of [0, 9]) expect(await errorCode(groupDecrypt(p.sender, textStore, m[i]!))).toBe("duplicate");
  });

  it("keeps records apart by user, device and distribution id", async () => {
    const store = new InMemorySenderKeyStore();
    const user = crypto.randomUUID();
    const a = { userId: user, deviceId: 1 };
    const b = { userId: user, deviceId: 2 };
    const d = newDistributionId();
    const skdmA = await createSenderKeyDistributionMessage(a, d, store);
    const skdmB = await createSenderKeyDistributionMessage(b, d, store);
    expect(parseSenderKeyDistributionMessage(skdmA).chainKey).not.toEqual(parseSenderKeyDistributionMessage(skdmB).chainKey);
    expect(await store.loadSenderKey(a, newDistributionId())).toBeNull();
    expect(await store.loadSenderKey(a, d.toUpperCase())).not.toBeNull();
    expect([...store.entries()]).toHaveLength(2);
  });

  it("a failed decryption writes nothing", async () => {
    const p = await pair();
    const m = await p.encrypt(text("x"));
    const before = (await p.receiver.loadSenderKey(p.sender, p.distributionId))!.serialize();
    const tampered = Uint8Array.from(m);
    tampered[tampered.length - 1]! ^= 2;
    expect(await errorCode(groupDecrypt(p.sender, p.receiver, tampered))).toBe("bad-signature");
    expect((await p.receiver.loadSenderKey(p.sender, p.distributionId))!.serialize()).toEqual(before);
    expect(await groupDecrypt(p.sender, p.receiver, m)).toEqual(text("x"));
  });

  it("refuses a malformed record", () => {
    expect(() => SenderKeyRecord.deserialize(Uint8Array.of(0x0a, 0x05, 0x08))).toThrow(SenderKeyRecordFormatError);
    expect(() => SenderKeyRecord.deserialize(Uint8Array.of(0x0a, 0x02, 0x0a, 0x00))).toThrow(SenderKeyRecordFormatError); // chain_id as bytes
    expect(SenderKeyRecord.deserialize(new Uint8Array(0)).states).toEqual([]);
  });
});

describe("sender keys: chains in a record", () => {
  const key = (n: number) => Uint8Array.of(0x05, ...new Uint8Array(32).fill(n));
  const chain = (n: number) => ({ iteration: n, seed: new Uint8Array(32).fill(n) });

  it(`keeps at most ${MAX_SENDER_KEY_STATES} chains, newest first`, () => {
    const record = new SenderKeyRecord();
    for (let i = 1; i <= 7; i++) record.addState(i, chain(i), key(i));
    expect(record.states.map((s) => s.chainId)).toEqual([7, 6, 5, 4, 3]);
  });

  it("the same chain again moves to the front unchanged; the same id with another key replaces it", () => {
    const record = new SenderKeyRecord();
    record.addState(1, chain(1), key(1));
    record.addState(2, chain(2), key(2));
    record.states[1]!.chainKey = chain(50);
    record.addState(1, chain(1), key(1));
    expect(record.states.map((s) => [s.chainId, s.chainKey!.iteration])).toEqual([
      [1, 50],
      [2, 2],
    ]);
    record.addState(2, chain(9), key(9));
    expect(record.states.map((s) => [s.chainId, s.chainKey!.iteration])).toEqual([
      [2, 9],
      [1, 50],
    ]);
  });

  it("a receiver decrypts both the old and the new chain of one distribution", async () => {
    const p = await pair();
    const old = await p.encrypt(text("old"));
    // the sender loses its state and starts a new chain under the same distribution id
    const fresh = new InMemorySenderKeyStore();
    const skdm2 = await createSenderKeyDistributionMessage(p.sender, p.distributionId, fresh);
    await processSenderKeyDistributionMessage(p.sender, skdm2, p.receiver);
    const young = await groupEncrypt(p.sender, p.distributionId, fresh, text("new"));
    expect(await groupDecrypt(p.sender, p.receiver, young)).toEqual(text("new"));
    expect(await groupDecrypt(p.sender, p.receiver, old)).toEqual(text("old"));
  });
});

describe("sender keys: limits and refusals", () => {
  it(`a long gap keeps only the newest ${MAX_MESSAGE_KEYS} skipped keys`, async () => {
    const p = await pair();
    const record = (await p.senderStore.loadSenderKey(p.sender, p.distributionId))!;
    const { nextChainKey } = await import("../../../client/crypto/sender-keys-chain");
    let c = record.states[0]!.chainKey!;
    while (c.iteration < MAX_MESSAGE_KEYS + 5) c = nextChainKey(c);
    record.states[0]!.chainKey = c;
    await p.senderStore.storeSenderKey(p.sender, p.distributionId, record);
    await groupDecrypt(p.sender, p.receiver, await p.encrypt(text("far")));
    const kept = (await p.receiver.loadSenderKey(p.sender, p.distributionId))!.states[0]!.messageKeys;
    expect(kept).toHaveLength(MAX_MESSAGE_KEYS);
    expect(kept[0]!.iteration).toBe(5);
    expect(kept.at(-1)!.iteration).toBe(MAX_MESSAGE_KEYS + 4);
  });

  it("refuses to send without a sending chain", async () => {
    const p = await pair();
    expect(await errorCode(groupEncrypt(p.sender, newDistributionId(), p.senderStore, text("x")))).toBe("no-sender-key-state");
    // the receiver has the chain, but not its private signing key
    expect(await errorCode(groupEncrypt(p.sender, p.distributionId, p.receiver, text("x")))).toBe("invalid-session");
  });

  it("refuses to go past iteration 2³²−1", async () => {
    const p = await pair();
    const record = (await p.senderStore.loadSenderKey(p.sender, p.distributionId))!;
    record.states[0]!.chainKey!.iteration = 0xffffffff;
    await p.senderStore.storeSenderKey(p.sender, p.distributionId, record);
    expect(await errorCode(groupEncrypt(p.sender, p.distributionId, p.senderStore, text("x")))).toBe("chain-exhausted");
  });

  it("refuses malformed distribution messages", async () => {
    const good = FIXED.skdm;
    const bad: [Uint8Array, SenderKeyErrorCode][] = [
      [good.slice(0, 60), "invalid-message"],
      [Uint8Array.of(0x23, ...good.subarray(1)), "legacy-version"],
      [Uint8Array.of(0x43, ...good.subarray(1)), "unrecognized-version"],
      [Uint8Array.of(...good.subarray(0, good.length - 35), 0x2a, 0x21, 0x08, ...good.subarray(good.length - 32)), "invalid-message"], // key type 0x08
      [Uint8Array.of(...good.subarray(0, 19), ...good.subarray(19 + 6)), "invalid-message"], // no chain id
    ];
    for (const [bytes, code] of bad) {
      expect(await errorCode(() => parseSenderKeyDistributionMessage(bytes))).toBe(code);
      expect(await errorCode(processSenderKeyDistributionMessage(FIXED.sender, bytes, new InMemorySenderKeyStore()))).toBe(code);
    }
  });

  it("refuses a message for a distribution it never heard of", async () => {
    const p = await pair();
    const q = await pair();
    expect(await errorCode(groupDecrypt(p.sender, p.receiver, await q.encrypt(text("x"))))).toBe("no-sender-key-state");
  });

  it("checks addresses", async () => {
    const store = new InMemorySenderKeyStore();
    await expect(createSenderKeyDistributionMessage({ userId: "", deviceId: 1 }, newDistributionId(), store)).rejects.toThrow(TypeError);
    await expect(createSenderKeyDistributionMessage(address(), "not-a-uuid", store)).rejects.toThrow(TypeError);
    await expect(groupEncrypt(address(), "not-a-uuid", store, text("x"))).rejects.toThrow(TypeError);
    expect([...store.entries()]).toHaveLength(0);
  });
});
