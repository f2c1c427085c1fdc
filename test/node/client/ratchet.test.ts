/**
 * The ratchet's parts on their own: libsignal's chain-key vectors, PQXDH against libsignal's primitives
 * with fixed inputs, the SPQR symmetric chain, skipped-key bounds, and forward secrecy asserted on the state.
 */
import { hexToBytes } from "@noble/hashes/utils.js";
import { PrivateKey, PublicKey, hkdf as libHkdf } from "@signalapp/libsignal-client";
import { describe, expect, it } from "vitest";
import { generateKeyPair } from "../../../src/protocol/keys";
import { DuplicateMessageError, InvalidKeyError, InvalidMessageError, decrypt, encrypt, processPreKeyBundle } from "../../../client/crypto";
import { concatBytes } from "../../../client/crypto/bytes";
import { agree, isCanonicalPublicKey } from "../../../client/crypto/curve";
import { deriveMessageKeys, messageKeySeed, nextChainKey } from "../../../client/crypto/kdf";
import { generateKyberKeyPair, kyberDecapsulate } from "../../../client/crypto/kem";
import { MAX_FORWARD_JUMPS, MAX_MESSAGE_KEYS, MAX_RECEIVER_CHAINS } from "../../../client/crypto/limits";
import { pqxdhAccept, pqxdhInitiate } from "../../../client/crypto/pqxdh";
import { consumeMessageSeed, ratchetDecrypt, ratchetEncrypt } from "../../../client/crypto/ratchet";
import { decodeSignalMessage } from "../../../client/crypto/messages";
import { SessionRecord } from "../../../client/crypto/session-record";
import type { ReceiverChain } from "../../../client/crypto/session-state";
import { SPQR_MAX_JUMP, parseSpqrMessage, spqrInitialState, spqrRecv, spqrSend } from "../../../client/crypto/spqr";
import { ab, RelayDevice, text, utf8 } from "./libsignal-stores";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

describe("chain keys", () => {
  it("match libsignal's chain-key test vector (ratchet/keys.rs)", () => {
    const seed = hexToBytes("8ab72d6f4cc5ac0d387eaf463378ddb28edd07385b1cb01250c715982e7ad48f");
    const keys = deriveMessageKeys(messageKeySeed(seed), undefined);
    expect(hex(keys.cipherKey)).toBe("bf51e9d75e0e31031051f82a2491ffc084fa298b7793bd9db620056febf45217");
    expect(hex(keys.macKey)).toBe("c6c77d6a73a354337a56435e34607dfe48e3ace14e77314dc6abc172e7a7030b");
    expect(hex(nextChainKey(seed))).toBe("28e8f8fee54b801eef7c5cfb2f17f32c7b334485bbb70fac6ec10342a246d15d");
  });

  it("salt message keys with the SPQR key exactly as libsignal's HKDF does", () => {
    const seed = crypto.getRandomValues(new Uint8Array(32));
    const salt = crypto.getRandomValues(new Uint8Array(32));
    const keys = deriveMessageKeys(seed, salt);
    const expected = libHkdf(80, ab(seed), ab(utf8("WhisperMessageKeys")), ab(salt));
    expect(concatBytes(keys.cipherKey, keys.macKey, keys.iv)).toEqual(expected);
  });
});

describe("X25519 agreement", () => {
  it("equals libsignal's (WebCrypto where present, noble otherwise) and refuses low-order points", async () => {
    for (let i = 0; i < 5; i++) {
      const ours = generateKeyPair();
      const theirs = PrivateKey.generate();
      expect(await agree(ours.privateKey, theirs.getPublicKey().serialize())).toEqual(theirs.agree(PublicKey.deserialize(ab(ours.publicKey))));
    }
    const { privateKey } = generateKeyPair();
    for (const u of [0, 1]) {
      const low = new Uint8Array(33);
      low[0] = 5;
      low[1] = u;
      await expect(agree(privateKey, low)).rejects.toThrow(InvalidKeyError);
    }
    await expect(agree(privateKey, new Uint8Array(32))).rejects.toThrow("public key must be 33 bytes starting with 0x05");
  });
});

describe("PQXDH with fixed inputs", () => {
  const fixed = () => ({
    alice: generateKeyPair(),
    base: generateKeyPair(),
    bob: generateKeyPair(),
    signed: generateKeyPair(),
    oneTime: generateKeyPair(),
    kyber: generateKyberKeyPair(new Uint8Array(64).fill(7)),
  });

  for (const withOneTime of [true, false]) {
    it(`initiator and responder agree, and match libsignal's DH and HKDF (${withOneTime ? "with" : "without"} a one-time prekey)`, async () => {
      const k = fixed();
      const random = new Uint8Array(32).fill(9);
      const initiated = await pqxdhInitiate(
        {
          ourIdentity: k.alice,
          ourBaseKey: k.base,
          theirIdentityKey: k.bob.publicKey,
          theirSignedPreKey: k.signed.publicKey,
          ...(withOneTime ? { theirOneTimePreKey: k.oneTime.publicKey } : {}),
          theirKyberPreKey: k.kyber.publicKey,
        },
        random,
      );
      // Deterministic for fixed inputs.
      const again = await pqxdhInitiate(
        { ourIdentity: k.alice, ourBaseKey: k.base, theirIdentityKey: k.bob.publicKey, theirSignedPreKey: k.signed.publicKey, ...(withOneTime ? { theirOneTimePreKey: k.oneTime.publicKey } : {}), theirKyberPreKey: k.kyber.publicKey },
        random,
      );
      expect(again).toEqual(initiated);
      const accepted = await pqxdhAccept({
        ourIdentity: k.bob,
        ourSignedPreKey: k.signed,
        ...(withOneTime ? { ourOneTimePreKey: k.oneTime } : {}),
        ourKyberSecretKey: k.kyber.secretKey,
        theirIdentityKey: k.alice.publicKey,
        theirBaseKey: k.base.publicKey,
        kyberCiphertext: initiated.kyberCiphertext,
      });
      expect(accepted).toEqual({ rootKey: initiated.rootKey, chainKey: initiated.chainKey, pqrKey: initiated.pqrKey });
      // The same derivation from libsignal's own X25519 and HKDF.
      const agree = (priv: Uint8Array, pub: Uint8Array) => PrivateKey.deserialize(ab(priv)).agree(PublicKey.deserialize(ab(pub)));
      const input = concatBytes(
        new Uint8Array(32).fill(0xff),
        agree(k.alice.privateKey, k.signed.publicKey),
        agree(k.base.privateKey, k.bob.publicKey),
        agree(k.base.privateKey, k.signed.publicKey),
        ...(withOneTime ? [agree(k.base.privateKey, k.oneTime.publicKey)] : []),
        kyberDecapsulate(k.kyber.secretKey, initiated.kyberCiphertext),
      );
      const okm = libHkdf(96, ab(input), ab(utf8("WhisperText_X25519_SHA-256_CRYSTALS-KYBER-1024")), null);
      expect(concatBytes(initiated.rootKey, initiated.chainKey, initiated.pqrKey)).toEqual(okm);
    });
  }

  it("the responder refuses a non-canonical base key, as libsignal does", async () => {
    const k = fixed();
    const ok = k.base.publicKey;
    expect(isCanonicalPublicKey(ok)).toBe(true);
    const highBit = Uint8Array.from(ok);
    highBit[32]! |= 0x80;
    const p = (1n << 255n) - 19n;
    const nonCanonical = new Uint8Array(33);
    nonCanonical[0] = 5;
    for (let i = 0; i < 32; i++) nonCanonical[1 + i] = Number(((p + 9n) >> BigInt(8 * i)) & 0xffn); // 9 + p: the base point, unreduced
    for (const bad of [highBit, nonCanonical]) {
      expect(isCanonicalPublicKey(bad)).toBe(false);
      await expect(
        pqxdhAccept({ ourIdentity: k.bob, ourSignedPreKey: k.signed, ourKyberSecretKey: k.kyber.secretKey, theirIdentityKey: k.alice.publicKey, theirBaseKey: bad, kyberCiphertext: new Uint8Array(1569).fill(8, 0, 1) }),
      ).rejects.toThrow("incoming base key is invalid");
    }
  });
});

describe("the SPQR symmetric chain", () => {
  const pairOfStates = (self = false) => {
    const auth = crypto.getRandomValues(new Uint8Array(32));
    return { a: spqrInitialState(auth, "A2B", self), b: spqrInitialState(auth, "B2A", self) };
  };

  it("sends None payloads at epoch 1 with indexes from 1, and both sides derive the same keys", () => {
    const { a, b } = pairOfStates();
    for (let i = 1; i <= 5; i++) {
      const sent = spqrSend(a);
      expect(Array.from(sent.message)).toEqual([0x01, 0x01, i, 0x00]);
      expect(spqrRecv(b, sent.message)).toEqual(sent.key);
      const back = spqrSend(b);
      expect(spqrRecv(a, back.message)).toEqual(back.key);
      expect(back.key).not.toEqual(sent.key);
    }
  });

  it("keeps out-of-order keys, refuses reuse, jumps past the limit and trimmed keys", () => {
    const { a, b } = pairOfStates();
    const sent = Array.from({ length: 10 }, () => spqrSend(a));
    expect(spqrRecv(b, sent[5]!.message)).toEqual(sent[5]!.key);
    expect(spqrRecv(b, sent[2]!.message)).toEqual(sent[2]!.key);
    expect(() => spqrRecv(b, sent[2]!.message)).toThrow("Key already requested: 3");
    expect(() => spqrRecv(b, sent[5]!.message)).toThrow("Key already requested: 6");
    expect(spqrRecv(b, sent[9]!.message)).toEqual(sent[9]!.key);
    const far = (index: number) => Uint8Array.from([1, 1, ...varint(index), 0]);
    expect(() => spqrRecv(b, far(10 + SPQR_MAX_JUMP + 1))).toThrow(/Key jump: 10 - 25011/);
    // A jump of exactly the limit is fine; then everything older than 2,000 back is trimmed.
    const c = pairOfStates().b;
    spqrRecv(c, far(SPQR_MAX_JUMP));
    expect(c.recv.held.length).toBe(2000);
    expect(() => spqrRecv(c, far(SPQR_MAX_JUMP - 2001))).toThrow(/Key trimmed/);
    expect(() => spqrRecv(c, far(SPQR_MAX_JUMP - 2000))).not.toThrow();
  });

  it("has no jump limit in a session with oneself, as libsignal", () => {
    const { b } = pairOfStates(true);
    expect(() => spqrRecv(b, Uint8Array.from([1, 1, ...varint(40_000), 0]))).not.toThrow();
  });

  it("parses libsignal's chunked payloads (and ignores them) and refuses malformed or unsupported messages", () => {
    const hdr = Uint8Array.from([1, 1, 1, 1, 0, ...new Uint8Array(32)]);
    expect(parseSpqrMessage(hdr)).toEqual({ epoch: 1n, index: 1, payloadType: 1 });
    const { b } = pairOfStates();
    expect(spqrRecv(b, hdr)).toHaveLength(32);
    const refusals: [number[], RegExp][] = [
      [[], /Minimum version/],
      [[2, 1, 1, 0], /unsupported SPQR version 2/],
      [[1, 0, 1, 0], /epoch 0/],
      [[1, 1, 1], /no payload type/],
      [[1, 1, 1, 7], /payload type 7/],
      [[1, 1, 1, 1, 0, 1, 2, 3], /truncated chunk/],
      [[1, 0x80], /decode failed/],
      [[1, 2, 1, 0], /epoch not in valid range: 2/],
      [[1, 1, 0, 0], /index 0/],
    ];
    for (const [bytes, reason] of refusals) {
      const state = pairOfStates().b;
      expect(() => spqrRecv(state, Uint8Array.from(bytes)), `${bytes}`).toThrow(InvalidMessageError);
      expect(() => spqrRecv(state, Uint8Array.from(bytes))).toThrow(reason);
    }
  });
});

function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return out;
}

describe("skipped message keys", () => {
  const chain = (): ReceiverChain => ({ ratchetKey: new Uint8Array(33), chainKey: { key: new Uint8Array(32).fill(1), index: 0 }, skipped: [] });
  const seeds = (n: number) => {
    const out: Uint8Array[] = [];
    let key: Uint8Array = new Uint8Array(32).fill(1);
    for (let i = 0; i < n; i++) {
      out.push(messageKeySeed(key));
      key = nextChainKey(key);
    }
    return out;
  };

  it("keeps the newest 2,000 seeds, each usable once, and refuses a jump past 25,000", () => {
    const expected = seeds(2_600);
    const c = chain();
    expect(consumeMessageSeed(c, 2_500, MAX_FORWARD_JUMPS)).toEqual(expected[2_500]);
    expect(c.skipped).toHaveLength(MAX_MESSAGE_KEYS);
    expect(c.skipped[0]!.index).toBe(500);
    expect(consumeMessageSeed(c, 500, MAX_FORWARD_JUMPS)).toEqual(expected[500]);
    expect(() => consumeMessageSeed(c, 500, MAX_FORWARD_JUMPS)).toThrow(DuplicateMessageError);
    expect(() => consumeMessageSeed(c, 499, MAX_FORWARD_JUMPS)).toThrow(DuplicateMessageError);
    expect(() => consumeMessageSeed(c, 2_500, MAX_FORWARD_JUMPS)).toThrow(DuplicateMessageError);
    expect(consumeMessageSeed(c, 2_501, MAX_FORWARD_JUMPS)).toEqual(expected[2_501]);
    const d = chain();
    expect(() => consumeMessageSeed(d, MAX_FORWARD_JUMPS + 1, MAX_FORWARD_JUMPS)).toThrow(/too far into the future/);
    expect(d.chainKey.index).toBe(0);
    expect(consumeMessageSeed(d, MAX_FORWARD_JUMPS, MAX_FORWARD_JUMPS)).toHaveLength(32);
  });

  it("keeps at most five receiving chains", async () => {
    const alice = new RelayDevice();
    const bob = new RelayDevice();
    await processPreKeyBundle(alice.store, bob.address, bob.bundle(true));
    for (let i = 0; i < 8; i++) {
      await decrypt(bob.store, alice.address, await encrypt(alice.store, bob.address, utf8(`a${i}`)));
      await decrypt(alice.store, bob.address, await encrypt(bob.store, alice.address, utf8(`b${i}`)));
    }
    const record = SessionRecord.deserialize((await bob.store.loadSession(alice.address))!);
    expect(record.current!.receivers).toHaveLength(MAX_RECEIVER_CHAINS);
  });
});

describe("forward secrecy", () => {
  it("a stolen state (current chain key included) cannot decrypt messages it already read", async () => {
    const alice = new RelayDevice();
    const bob = new RelayDevice();
    await processPreKeyBundle(alice.store, bob.address, bob.bundle(true));
    await decrypt(bob.store, alice.address, await encrypt(alice.store, bob.address, utf8("hello")));
    await decrypt(alice.store, bob.address, await encrypt(bob.store, alice.address, utf8("ack")));
    // Alice's sending chain before the ten messages: what an attacker would need.
    const before = SessionRecord.deserialize((await alice.store.loadSession(bob.address))!).current!.sender.chainKey;
    const sent = [];
    for (let i = 0; i < 10; i++) sent.push(await encrypt(alice.store, bob.address, utf8(`secret ${i}`)));
    for (const m of sent) await decrypt(bob.store, alice.address, m);

    const stolenBytes = (await bob.store.loadSession(alice.address))!;
    const stolen = SessionRecord.deserialize(stolenBytes);
    const chain = stolen.current!.receivers.find((c) => c.chainKey.index === 10)!;
    expect(chain).toBeDefined();
    // Nothing left for the ten messages: no skipped seeds, the chain key is ten steps past, and HMAC does not run back.
    expect(chain.skipped).toEqual([]);
    const usedSeeds = new Set<string>();
    let key = before.key;
    for (let i = 0; i < 10; i++) {
      usedSeeds.add(hex(messageKeySeed(key)));
      key = nextChainKey(key);
    }
    expect(hex(chain.chainKey.key)).toBe(hex(key)); // the stolen key is the one after message 9
    let forward = chain.chainKey.key;
    for (let i = 0; i < 1_000; i++) {
      expect(usedSeeds.has(hex(messageKeySeed(forward)))).toBe(false);
      forward = nextChainKey(forward);
    }
    // No byte of the serialized state is one of those seeds or the chain keys before it.
    const stored = Buffer.from(stolenBytes).toString("utf8");
    for (const seed of usedSeeds) expect(stored).not.toContain(Buffer.from(seed, "hex").toString("base64"));
    expect(stored).not.toContain(Buffer.from(before.key).toString("base64"));
    // And decrypting them with the stolen state fails.
    for (const m of sent) {
      const copy = SessionRecord.deserialize(stolenBytes).current!;
      await expect(ratchetDecrypt(copy, decodeSignalMessage(m.body), { expectedAddresses: undefined })).rejects.toThrow(DuplicateMessageError);
    }
  });

  it("after a DH ratchet step the old ratchet private key and root key are gone from the state", async () => {
    const alice = new RelayDevice();
    const bob = new RelayDevice();
    await processPreKeyBundle(alice.store, bob.address, bob.bundle(true));
    await decrypt(bob.store, alice.address, await encrypt(alice.store, bob.address, utf8("hello")));
    const old = SessionRecord.deserialize((await alice.store.loadSession(bob.address))!).current!;
    await decrypt(alice.store, bob.address, await encrypt(bob.store, alice.address, utf8("ack")));
    const now = SessionRecord.deserialize((await alice.store.loadSession(bob.address))!).current!;
    expect(now.sender.ratchetKey.privateKey).not.toEqual(old.sender.ratchetKey.privateKey);
    expect(now.rootKey).not.toEqual(old.rootKey);
    const stored = Buffer.from((await alice.store.loadSession(bob.address))!).toString("utf8");
    expect(stored).not.toContain(Buffer.from(old.sender.ratchetKey.privateKey).toString("base64"));
    expect(stored).not.toContain(Buffer.from(old.rootKey).toString("base64"));
  });
});

describe("ratchet state round trip", () => {
  it("an encrypted message decrypts with the peer's state, and only once", async () => {
    const alice = new RelayDevice();
    const bob = new RelayDevice();
    await processPreKeyBundle(alice.store, bob.address, bob.bundle(false));
    await decrypt(bob.store, alice.address, await encrypt(alice.store, bob.address, utf8("hello")));
    const a = SessionRecord.deserialize((await alice.store.loadSession(bob.address))!).current!;
    const b = SessionRecord.deserialize((await bob.store.loadSession(alice.address))!).current!;
    const body = ratchetEncrypt(b, utf8("direct"));
    expect(text(await ratchetDecrypt(a, decodeSignalMessage(body), { expectedAddresses: undefined }))).toBe("direct");
    await expect(ratchetDecrypt(a, decodeSignalMessage(body), { expectedAddresses: undefined })).rejects.toThrow(DuplicateMessageError);
  });
});
