/**
 * client/crypto/sender-keys.ts against Signal's own library (@signalapp/libsignal-client 0.103, the oracle):
 * distribution messages and group messages both ways, out of order, the jump and kept-key limits, refusals that
 * must match, and the storage format (records move between the two implementations).
 */
import {
  ErrorCode,
  LibSignalErrorBase,
  PrivateKey,
  SenderKeyDistributionMessage,
  SenderKeyMessage,
  groupDecrypt as lsDecrypt,
  groupEncrypt as lsEncrypt,
  processSenderKeyDistributionMessage as lsProcess,
} from "@signalapp/libsignal-client";
import { describe, expect, it } from "vitest";
import {
  CIPHERTEXT_TYPE_SENDER_KEY,
  InMemorySenderKeyStore,
  MAX_FORWARD_JUMPS,
  MAX_MESSAGE_KEYS,
  SenderKeyError,
  SenderKeyRecord,
  createSenderKeyDistributionMessage,
  groupDecrypt,
  groupEncrypt,
  newDistributionId,
  parseSenderKeyDistributionMessage,
  parseSenderKeyMessage,
  processSenderKeyDistributionMessage,
  type SenderAddress,
  type SenderKeyErrorCode,
} from "../../../client/crypto/sender-keys";
import { aes256CbcEncrypt, messageKeys, messageSeed, nextChainKey } from "../../../client/crypto/sender-keys-chain";
import { LibsignalSenderKeyStore, protocolAddress } from "./libsignal-sender-key-store";

const MANY = 300;
const address = (deviceId = 1): SenderAddress => ({ userId: crypto.randomUUID(), deviceId });
const bytes = (b: Uint8Array) => Uint8Array.from(b);
const text = (s: string) => new TextEncoder().encode(s);
const plain = (i: number) => text(`message ${i} ${"·".repeat(i % 37)}`);

function shuffled<T>(items: T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = crypto.getRandomValues(new Uint32Array(1))[0]! % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

async function ourError(p: Promise<unknown>): Promise<SenderKeyErrorCode> {
  try {
    await p;
  } catch (e) {
    if (e instanceof SenderKeyError) return e.code;
    throw e;
  }
  throw new Error("expected a SenderKeyError");
}

async function libsignalError(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (e instanceof LibSignalErrorBase) return e.code === ErrorCode.DuplicatedMessage ? "duplicate" : e.message;
    throw e;
  }
  throw new Error("expected a libsignal error");
}

/** We send: our sender store, a libsignal receiver and one of ours, both given our distribution message. */
async function ourSender() {
  const sender = address(2);
  const distributionId = newDistributionId();
  const senderStore = new InMemorySenderKeyStore();
  const skdm = await createSenderKeyDistributionMessage(sender, distributionId, senderStore);
  const libsignal = new LibsignalSenderKeyStore();
  await lsProcess(protocolAddress(sender), SenderKeyDistributionMessage.deserialize(bytes(skdm)), libsignal);
  const ours = new InMemorySenderKeyStore();
  await processSenderKeyDistributionMessage(sender, skdm, ours);
  const encrypt = (p: Uint8Array) => groupEncrypt(sender, distributionId, senderStore, p);
  /** Moves our sending chain forward without sending (to reach far iterations quickly). */
  const skipTo = async (iteration: number) => {
    const record = (await senderStore.loadSenderKey(sender, distributionId))!;
    let chain = record.states[0]!.chainKey!;
    while (chain.iteration < iteration) chain = nextChainKey(chain);
    record.states[0]!.chainKey = chain;
    await senderStore.storeSenderKey(sender, distributionId, record);
  };
  return { sender, distributionId, senderStore, skdm, libsignal, ours, encrypt, skipTo };
}

/** libsignal sends: its sender store, and our receiver given its distribution message. */
async function libsignalSender() {
  const sender = address(3);
  const distributionId = newDistributionId();
  const senderStore = new LibsignalSenderKeyStore();
  const skdm = (await SenderKeyDistributionMessage.create(protocolAddress(sender), distributionId, senderStore)).serialize();
  const ours = new InMemorySenderKeyStore();
  await processSenderKeyDistributionMessage(sender, skdm, ours);
  const encrypt = async (p: Uint8Array) => {
    const message = await lsEncrypt(protocolAddress(sender), distributionId, senderStore, bytes(p));
    expect(message.type()).toBe(CIPHERTEXT_TYPE_SENDER_KEY);
    return message.serialize();
  };
  return { sender, distributionId, senderStore, skdm, ours, encrypt };
}

describe("sender keys: we send, libsignal receives", () => {
  it("libsignal reads our distribution message field for field", async () => {
    const s = await ourSender();
    const theirs = SenderKeyDistributionMessage.deserialize(bytes(s.skdm));
    const ours = parseSenderKeyDistributionMessage(s.skdm);
    expect(s.skdm[0]).toBe(0x33);
    expect(theirs.distributionId()).toBe(s.distributionId);
    expect(theirs.chainId()).toBe(ours.chainId);
    expect(ours.chainId).toBeLessThan(2 ** 31);
    expect(theirs.iteration()).toBe(0);
    expect(theirs.chainKey()).toEqual(bytes(ours.chainKey));
  });

  it(`libsignal decrypts ${MANY} of our group messages in order`, async () => {
    const s = await ourSender();
    for (let i = 0; i < MANY; i++) {
      const message = await s.encrypt(plain(i));
      const parsed = SenderKeyMessage.deserialize(message);
      expect(parsed.iteration()).toBe(i);
      expect(parsed.distributionId()).toBe(s.distributionId);
      expect(await lsDecrypt(protocolAddress(s.sender), s.libsignal, message)).toEqual(plain(i));
    }
  });

  it("libsignal decrypts our messages out of order, and empty and large plaintexts", async () => {
    const s = await ourSender();
    const sizes = [0, 1, 15, 16, 17, 1000, 65_536];
    const sent: [Uint8Array, Uint8Array][] = [];
    for (let i = 0; i < 120; i++) {
      const p = i < sizes.length ? crypto.getRandomValues(new Uint8Array(sizes[i]!)) : plain(i);
      sent.push([p, await s.encrypt(p)]);
    }
    for (const [p, message] of shuffled(sent)) expect(await lsDecrypt(protocolAddress(s.sender), s.libsignal, bytes(message))).toEqual(bytes(p));
  });

  it("a late member's distribution message starts at the current iteration", async () => {
    const s = await ourSender();
    const early = await s.encrypt(plain(0));
    const late = await createSenderKeyDistributionMessage(s.sender, s.distributionId, s.senderStore);
    expect(SenderKeyDistributionMessage.deserialize(late).iteration()).toBe(1);
    const libsignal = new LibsignalSenderKeyStore();
    await lsProcess(protocolAddress(s.sender), SenderKeyDistributionMessage.deserialize(late), libsignal);
    expect(await libsignalError(lsDecrypt(protocolAddress(s.sender), libsignal, early))).toBe("duplicate");
    expect(await lsDecrypt(protocolAddress(s.sender), libsignal, await s.encrypt(plain(1)))).toEqual(plain(1));
  });
});

describe("sender keys: libsignal sends, we receive", () => {
  it("we read libsignal's distribution message", async () => {
    const s = await libsignalSender();
    const theirs = SenderKeyDistributionMessage.deserialize(s.skdm);
    const ours = parseSenderKeyDistributionMessage(s.skdm);
    expect(ours).toMatchObject({ distributionId: s.distributionId, chainId: theirs.chainId(), iteration: 0 });
    expect(bytes(ours.chainKey)).toEqual(theirs.chainKey());
  });

  it(`we decrypt ${MANY} of libsignal's group messages in order`, async () => {
    const s = await libsignalSender();
    for (let i = 0; i < MANY; i++) {
      const message = await s.encrypt(plain(i));
      expect(parseSenderKeyMessage(message).iteration).toBe(i);
      expect(await groupDecrypt(s.sender, s.ours, message)).toEqual(plain(i));
    }
  });

  it("we decrypt libsignal's messages out of order, and empty and large plaintexts", async () => {
    const s = await libsignalSender();
    const sizes = [0, 1, 15, 16, 17, 1000, 65_536];
    const sent: [Uint8Array, Uint8Array][] = [];
    for (let i = 0; i < 120; i++) {
      const p = i < sizes.length ? crypto.getRandomValues(new Uint8Array(sizes[i]!)) : plain(i);
      sent.push([p, await s.encrypt(p)]);
    }
    for (const [p, message] of shuffled(sent)) expect(await groupDecrypt(s.sender, s.ours, message)).toEqual(bytes(p));
  });

  it("a group of three: libsignal and we both send, everyone reads everyone", async () => {
    const a = await libsignalSender();
    const b = await ourSender();
    // a third member, ours, receives from both
    const c = new InMemorySenderKeyStore();
    await processSenderKeyDistributionMessage(a.sender, a.skdm, c);
    await processSenderKeyDistributionMessage(b.sender, b.skdm, c);
    for (let i = 0; i < 20; i++) {
      const fromA = await a.encrypt(plain(i));
      const fromB = await b.encrypt(plain(i + 100));
      expect(await groupDecrypt(a.sender, c, fromA)).toEqual(plain(i));
      expect(await groupDecrypt(b.sender, c, fromB)).toEqual(plain(i + 100));
      expect(await lsDecrypt(protocolAddress(b.sender), b.libsignal, fromB)).toEqual(plain(i + 100));
    }
  });
});

describe("sender keys: both libraries give the same verdicts", () => {
  it(`jumps at most ${MAX_FORWARD_JUMPS} iterations ahead`, async () => {
    const s = await ourSender();
    await s.skipTo(MAX_FORWARD_JUMPS + 1);
    const tooFar = await s.encrypt(plain(1));
    expect(await ourError(groupDecrypt(s.sender, s.ours, tooFar))).toBe("too-far-ahead");
    expect(await libsignalError(lsDecrypt(protocolAddress(s.sender), s.libsignal, tooFar))).toMatch(/too far into the future/);

    const t = await ourSender();
    await t.skipTo(MAX_FORWARD_JUMPS);
    const farthest = await t.encrypt(plain(2));
    expect(await groupDecrypt(t.sender, t.ours, farthest)).toEqual(plain(2));
    expect(await lsDecrypt(protocolAddress(t.sender), t.libsignal, farthest)).toEqual(plain(2));
  });

  it(`keeps the newest ${MAX_MESSAGE_KEYS} skipped keys`, async () => {
    const s = await ourSender();
    const skipped = 2500;
    const early: Uint8Array[] = [];
    for (let i = 0; i < 3; i++) early.push(await s.encrypt(plain(i))); // iterations 0..2
    await s.skipTo(skipped - MAX_MESSAGE_KEYS - 1);
    const lastDropped = await s.encrypt(plain(10)); // iteration 499
    const firstKept = await s.encrypt(plain(11)); // iteration 500
    await s.skipTo(skipped);
    const ahead = await s.encrypt(plain(12)); // iteration 2500: keys 0..2499 skipped, 500..2499 kept
    expect(parseSenderKeyMessage(ahead).iteration).toBe(skipped);
    for (const receive of [
      (m: Uint8Array) => groupDecrypt(s.sender, s.ours, m),
      (m: Uint8Array) => lsDecrypt(protocolAddress(s.sender), s.libsignal, bytes(m)),
    ]) {
      expect(await receive(ahead)).toEqual(plain(12));
      expect(await receive(firstKept)).toEqual(plain(11));
      await expect(receive(lastDropped)).rejects.toThrow();
      await expect(receive(early[0]!)).rejects.toThrow();
    }
    const record = (await s.ours.loadSenderKey(s.sender, s.distributionId))!;
    expect(record.states[0]!.messageKeys).toHaveLength(MAX_MESSAGE_KEYS - 1);
    expect(await ourError(groupDecrypt(s.sender, s.ours, lastDropped))).toBe("duplicate");
    expect(await libsignalError(lsDecrypt(protocolAddress(s.sender), s.libsignal, lastDropped))).toBe("duplicate");
  });

  it("refuses replays, in order and out of order", async () => {
    const s = await ourSender();
    const m = [];
    for (let i = 0; i < 5; i++) m.push(await s.encrypt(plain(i)));
    for (const i of [0, 4, 2]) {
      expect(await groupDecrypt(s.sender, s.ours, m[i]!)).toEqual(plain(i));
      expect(await lsDecrypt(protocolAddress(s.sender), s.libsignal, m[i]!)).toEqual(plain(i));
    }
    for (const i of [0, 4, 2]) {
      expect(await ourError(groupDecrypt(s.sender, s.ours, m[i]!))).toBe("duplicate");
      expect(await libsignalError(lsDecrypt(protocolAddress(s.sender), s.libsignal, m[i]!))).toBe("duplicate");
    }
    // the ones never read still are
    expect(await groupDecrypt(s.sender, s.ours, m[3]!)).toEqual(plain(3));
    // processing the distribution message again does not rewind the chain
    await processSenderKeyDistributionMessage(s.sender, s.skdm, s.ours);
    expect(await ourError(groupDecrypt(s.sender, s.ours, m[0]!))).toBe("duplicate");
    expect(await groupDecrypt(s.sender, s.ours, m[1]!)).toEqual(plain(1));
  });

  it("refuses a libsignal replay", async () => {
    const s = await libsignalSender();
    const m = await s.encrypt(plain(1));
    expect(await groupDecrypt(s.sender, s.ours, m)).toEqual(plain(1));
    expect(await ourError(groupDecrypt(s.sender, s.ours, m))).toBe("duplicate");
  });

  it("refuses tampered signatures and signed parts, from either sender", async () => {
    const ours = await ourSender();
    const theirs = await libsignalSender();
    const fromUs = await ours.encrypt(plain(1));
    const fromThem = await theirs.encrypt(plain(1));
    const flip = (m: Uint8Array, at: number) => {
      const x = bytes(m);
      x[at < 0 ? x.length + at : at]! ^= 0x01;
      return x;
    };
    for (const at of [-1, -33, -64, -70 /* ciphertext */, 5 /* distribution id */]) {
      expect(await libsignalError(lsDecrypt(protocolAddress(ours.sender), ours.libsignal, flip(fromUs, at)))).toMatch(/signature|sender key state/);
      const code = await ourError(groupDecrypt(theirs.sender, theirs.ours, flip(fromThem, at)));
      expect(code).toBe(at === 5 ? "no-sender-key-state" : "bad-signature");
    }
    // a signature over the right content by another key
    const other = PrivateKey.generate();
    const parsed = parseSenderKeyMessage(fromThem);
    const forged = SenderKeyMessage._new(3, theirs.distributionId, parsed.chainId, parsed.iteration, bytes(parsed.ciphertext), other).serialize();
    expect(await ourError(groupDecrypt(theirs.sender, theirs.ours, forged))).toBe("bad-signature");
    // untouched, both still decrypt
    expect(await groupDecrypt(theirs.sender, theirs.ours, fromThem)).toEqual(plain(1));
    expect(await lsDecrypt(protocolAddress(ours.sender), ours.libsignal, fromUs)).toEqual(plain(1));
  });

  it("refuses a correctly signed message whose ciphertext does not decrypt, leaving the chain as it was", async () => {
    const s = await ourSender();
    const record = (await s.senderStore.loadSenderKey(s.sender, s.distributionId))!;
    const signing = PrivateKey.deserialize(bytes(record.states[0]!.signingKey!.privateKey!));
    const chainId = record.states[0]!.chainId;
    // Whole blocks that decrypt under iteration 0's real key to a last byte of 0x00: padding that is never valid.
    // (Random blocks would pass the padding check about once in 256 runs.)
    const { key, iv } = messageKeys(messageSeed(record.states[0]!.chainKey!));
    const badPadding = (await aes256CbcEncrypt(key, iv, new Uint8Array(32))).slice(0, 32);
    for (const ciphertext of [new Uint8Array(0), new Uint8Array(15), badPadding]) {
      const bad = SenderKeyMessage._new(3, s.distributionId, chainId, 0, ciphertext, signing).serialize();
      expect(await ourError(groupDecrypt(s.sender, s.ours, bad))).toBe("invalid-message");
      expect(await libsignalError(lsDecrypt(protocolAddress(s.sender), s.libsignal, bad))).toMatch(/decryption failed|invalid/i);
    }
    expect(await groupDecrypt(s.sender, s.ours, await s.encrypt(plain(0)))).toEqual(plain(0));
  });

  it("refuses unknown distribution ids, chains and senders", async () => {
    const s = await ourSender();
    const other = await ourSender();
    const fromOther = await other.encrypt(plain(1));
    expect(await ourError(groupDecrypt(s.sender, s.ours, fromOther))).toBe("no-sender-key-state");
    expect(await libsignalError(lsDecrypt(protocolAddress(s.sender), s.libsignal, fromOther))).toMatch(/missing sender key state/);
    // right distribution, wrong sender device
    const m = await s.encrypt(plain(1));
    expect(await ourError(groupDecrypt({ ...s.sender, deviceId: 9 }, s.ours, m))).toBe("no-sender-key-state");
    // right distribution id, unknown chain id
    const record = (await s.senderStore.loadSenderKey(s.sender, s.distributionId))!;
    const signing = PrivateKey.deserialize(bytes(record.states[0]!.signingKey!.privateKey!));
    const wrongChain = SenderKeyMessage._new(3, s.distributionId, (record.states[0]!.chainId + 1) % 2 ** 31, 1, new Uint8Array(16), signing).serialize();
    expect(await ourError(groupDecrypt(s.sender, s.ours, wrongChain))).toBe("no-sender-key-state");
    expect(await libsignalError(lsDecrypt(protocolAddress(s.sender), s.libsignal, wrongChain))).toMatch(/missing sender key state/);
  });

  it("refuses malformed messages where libsignal does", async () => {
    const s = await libsignalSender();
    const m = await s.encrypt(plain(1));
    const cases: [Uint8Array, SenderKeyErrorCode][] = [
      [m.slice(0, 64), "invalid-message"],
      [Uint8Array.of(0x23, ...m.subarray(1)), "legacy-version"],
      [Uint8Array.of(0x43, ...m.subarray(1)), "unrecognized-version"],
      [Uint8Array.of(0x33, 0xff, ...m.subarray(2)), "invalid-message"],
    ];
    for (const [bad, code] of cases) {
      expect(await ourError(groupDecrypt(s.sender, s.ours, bad))).toBe(code);
      await expect(lsDecrypt(protocolAddress(s.sender), new LibsignalSenderKeyStore(), bytes(bad))).rejects.toThrow();
      expect(() => SenderKeyMessage.deserialize(bytes(bad))).toThrow();
    }
  });

  it("rotation: a new distribution reaches only the members who got its distribution message", async () => {
    const s = await ourSender();
    const stay = new InMemorySenderKeyStore();
    await processSenderKeyDistributionMessage(s.sender, s.skdm, stay);
    const rotated = newDistributionId();
    const skdm2 = await createSenderKeyDistributionMessage(s.sender, rotated, s.senderStore);
    expect(parseSenderKeyDistributionMessage(skdm2).chainId).not.toBe(parseSenderKeyDistributionMessage(s.skdm).chainId);
    await processSenderKeyDistributionMessage(s.sender, skdm2, stay);
    await lsProcess(protocolAddress(s.sender), SenderKeyDistributionMessage.deserialize(skdm2), s.libsignal);
    const after = await groupEncrypt(s.sender, rotated, s.senderStore, plain(7));
    expect(await groupDecrypt(s.sender, stay, after)).toEqual(plain(7));
    expect(await lsDecrypt(protocolAddress(s.sender), s.libsignal, after)).toEqual(plain(7));
    // s.ours stands for the removed member
    expect(await ourError(groupDecrypt(s.sender, s.ours, after))).toBe("no-sender-key-state");
  });
});

describe("sender keys: records in libsignal's storage format", () => {
  it("processing the same distribution message gives byte-identical records in both libraries", async () => {
    const s = await libsignalSender();
    const libsignal = new LibsignalSenderKeyStore();
    await lsProcess(protocolAddress(s.sender), SenderKeyDistributionMessage.deserialize(s.skdm), libsignal);
    const ours = (await s.ours.loadSenderKey(s.sender, s.distributionId))!;
    expect(ours.serialize()).toEqual(libsignal.recordBytes(s.sender, s.distributionId));
    // and after out-of-order decryption (kept keys, advanced chain)
    const m = [];
    for (let i = 0; i < 6; i++) m.push(await s.encrypt(plain(i)));
    for (const i of [3, 1, 5]) {
      await groupDecrypt(s.sender, s.ours, m[i]!);
      await lsDecrypt(protocolAddress(s.sender), libsignal, m[i]!);
    }
    const after = (await s.ours.loadSenderKey(s.sender, s.distributionId))!;
    expect(after.states[0]!.messageKeys.map((k) => k.iteration)).toEqual([0, 2, 4]);
    expect(after.serialize()).toEqual(libsignal.recordBytes(s.sender, s.distributionId));
  });

  it("libsignal sends with a sending record we created, and we with one libsignal created", async () => {
    const a = await ourSender();
    await a.encrypt(plain(0));
    // our sender record into libsignal, which continues the chain
    const ls = new LibsignalSenderKeyStore();
    ls.putRecordBytes(a.sender, a.distributionId, (await a.senderStore.loadSenderKey(a.sender, a.distributionId))!.serialize());
    const byLibsignal = (await lsEncrypt(protocolAddress(a.sender), a.distributionId, ls, plain(1))).serialize();
    expect(parseSenderKeyMessage(byLibsignal).iteration).toBe(1);
    expect(await groupDecrypt(a.sender, a.ours, byLibsignal)).toEqual(plain(1));

    // libsignal's sender record into our store, which continues the chain
    const b = await libsignalSender();
    await b.encrypt(plain(0));
    const store = new InMemorySenderKeyStore();
    await store.storeSenderKey(b.sender, b.distributionId, SenderKeyRecord.deserialize(b.senderStore.recordBytes(b.sender, b.distributionId)!));
    const byUs = await groupEncrypt(b.sender, b.distributionId, store, plain(1));
    expect(parseSenderKeyMessage(byUs).iteration).toBe(1);
    const libsignalReceiver = new LibsignalSenderKeyStore();
    await lsProcess(protocolAddress(b.sender), SenderKeyDistributionMessage.deserialize(b.skdm), libsignalReceiver);
    expect(await lsDecrypt(protocolAddress(b.sender), libsignalReceiver, byUs)).toEqual(plain(1));
  });
});
