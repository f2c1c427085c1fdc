/**
 * src/protocol/keys.ts against Signal's own library (@signalapp/libsignal-client, the oracle): key encodings,
 * XEdDSA both ways, refusals that must match, and the two device-key fixtures.
 */
import { ed25519 } from "@noble/curves/ed25519.js";
import { bytesToNumberLE, concatBytes } from "@noble/curves/utils.js";
import { sha512 } from "@noble/hashes/sha2.js";
import {
  Direction,
  IdentityChange,
  IdentityKeyStore,
  KEMKeyPair,
  KEMPublicKey,
  KyberPreKeyRecord,
  KyberPreKeyStore,
  PreKeyBundle,
  PreKeyRecord,
  PreKeySignalMessage,
  PreKeyStore,
  PrivateKey,
  ProtocolAddress,
  PublicKey,
  SessionRecord,
  SessionStore,
  SignedPreKeyRecord,
  SignedPreKeyStore,
  processPreKeyBundle,
  signalDecryptPreKey,
  signalEncrypt,
} from "@signalapp/libsignal-client";
import { describe, expect, it } from "vitest";
import { fromBase64, isBase64 } from "../../../src/protocol/base64";
import {
  EC_PUBLIC_KEY_BYTES,
  KEY_TYPE_DJB,
  KEY_TYPE_KYBER1024,
  KYBER1024_PUBLIC_KEY_BYTES,
  KeyFormatError,
  SIGNATURE_BYTES,
  assertEcPublicKey,
  assertKyberPublicKey,
  generateKeyPair,
  serializeEcPublicKey,
  xeddsaSign,
  xeddsaVerifier,
  xeddsaVerify,
} from "../../../src/protocol/keys";
import { deviceKeys, kyberKeyPair, type DeviceKeysBody } from "../../support/device-keys";
import { libsignalDeviceKeys } from "../support/libsignal-device";

const ROUNDS = 40;
const P = ed25519.Point.Fp.ORDER; // 2^255 − 19
const L = ed25519.Point.Fn.ORDER; // ℓ, the prime group order

/** The u-coordinate of a Curve25519 point of order 8 (from the well-known X25519 low-order list). */
const ORDER_8_U = 325606250916557431795983626356110631294008115727848805560023387167927233504n;

const random = (n: number) => crypto.getRandomValues(new Uint8Array(n));
/** A copy backed by a plain ArrayBuffer, as libsignal's typings want. */
const bytes = (b: Uint8Array) => Uint8Array.from(b);
const b64 = (text: string) => bytes(fromBase64(text));
const libVerify = (publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array) =>
  PublicKey.deserialize(bytes(publicKey)).verify(bytes(message), bytes(signature));
/** A serialized key holding u as 32 little-endian bytes (u may be ≥ p and use bit 255). */
const rawKey = (u: bigint) => {
  const out = new Uint8Array(33);
  out[0] = KEY_TYPE_DJB;
  for (let i = 0; i < 32; i++) out[1 + i] = Number((u >> BigInt(8 * i)) & 0xffn);
  return out;
};
/** Random messages of varied lengths, the empty one and a 33-byte "key" among them. */
const message = (i: number) => random([0, 1, 32, 33, 64, 1569, 5000][i % 7]! + (i % 3));
/** s of a signature, without the sign bit. */
const sOf = (signature: Uint8Array) => bytesToNumberLE(signature.slice(32).map((b, i) => (i === 31 ? b & 0x7f : b)));
/** The signature with s replaced, keeping its sign bit. */
const withS = (signature: Uint8Array, s: bigint) => {
  const out = Uint8Array.from(signature);
  for (let i = 0; i < 32; i++) out[32 + i] = Number((s >> BigInt(8 * i)) & 0xffn);
  out[63] = (out[63]! & 0x7f) | (signature[63]! & 0x80);
  return out;
};

describe("key encodings", () => {
  it("has libsignal's constants", () => {
    const kem = KEMKeyPair.generate().getPublicKey().serialize();
    const ec = PrivateKey.generate().getPublicKey().serialize();
    expect([KEY_TYPE_DJB, EC_PUBLIC_KEY_BYTES]).toEqual([ec[0], ec.length]);
    expect([KEY_TYPE_KYBER1024, KYBER1024_PUBLIC_KEY_BYTES]).toEqual([kem[0], kem.length]);
    expect(PrivateKey.generate().sign(random(8)).length).toBe(SIGNATURE_BYTES);
  });

  it("serializes a public key exactly as PublicKey.serialize()", () => {
    for (let i = 0; i < ROUNDS; i++) {
      const pub = PrivateKey.generate().getPublicKey();
      expect(serializeEcPublicKey(pub.getPublicKeyBytes())).toEqual(pub.serialize());
    }
    expect(() => serializeEcPublicKey(random(33))).toThrow(KeyFormatError);
  });

  it("generates key pairs libsignal agrees with, private keys in libsignal's clamped form", () => {
    const seen = new Set<string>();
    for (let i = 0; i < ROUNDS; i++) {
      const { publicKey, privateKey } = generateKeyPair();
      const lib = PrivateKey.deserialize(privateKey);
      expect(lib.getPublicKey().serialize()).toEqual(publicKey);
      expect(lib.serialize()).toEqual(privateKey); // libsignal clamps on load: ours already is
      seen.add(publicKey.join());
    }
    expect(seen.size).toBe(ROUNDS);
  });
});

describe("XEdDSA against libsignal", () => {
  it("verifies libsignal's signatures (both sign bits, many keys and messages)", () => {
    const signBits = new Set<number>();
    for (let i = 0; i < ROUNDS; i++) {
      const key = PrivateKey.generate();
      const pub = key.getPublicKey().serialize();
      const verifier = xeddsaVerifier(pub);
      for (let j = 0; j < 3; j++) {
        const msg = message(i + j);
        const sig = key.sign(msg);
        signBits.add(sig[63]! >> 7);
        expect(xeddsaVerify(pub, msg, sig)).toBe(true);
        expect(verifier(msg, sig)).toBe(true);
      }
    }
    expect(signBits).toEqual(new Set([0, 1]));
  });

  it("makes signatures libsignal verifies (our keys and libsignal's keys)", () => {
    for (let i = 0; i < ROUNDS; i++) {
      const ours = generateKeyPair();
      const msg = message(i);
      expect(libVerify(ours.publicKey, msg, xeddsaSign(ours.privateKey, msg))).toBe(true);

      const lib = PrivateKey.generate();
      const sig = xeddsaSign(lib.serialize(), msg);
      expect(lib.getPublicKey().verify(msg, sig)).toBe(true);
      expect(xeddsaVerify(lib.getPublicKey().serialize(), msg, sig)).toBe(true);
    }
  });

  it("carries the same sign bit as libsignal for the same key (the scalar is never negated)", () => {
    for (let i = 0; i < ROUNDS; i++) {
      const lib = PrivateKey.generate();
      const msg = message(i);
      expect(xeddsaSign(lib.serialize(), msg)[63]! >> 7).toBe(lib.sign(msg)[63]! >> 7);
    }
  });

  it("clamps an unclamped private key as libsignal does", () => {
    for (let i = 0; i < 10; i++) {
      const raw = random(32);
      raw[0]! |= 7;
      raw[31]! |= 0x80;
      const msg = message(i);
      expect(libVerify(PrivateKey.deserialize(raw).getPublicKey().serialize(), msg, xeddsaSign(raw, msg))).toBe(true);
    }
  });

  it("is deterministic for fixed randomness and randomized by default", () => {
    const { privateKey, publicKey } = generateKeyPair();
    const msg = random(100);
    const z = random(64);
    expect(xeddsaSign(privateKey, msg, z)).toEqual(xeddsaSign(privateKey, msg, z));
    const a = xeddsaSign(privateKey, msg);
    const b = xeddsaSign(privateKey, msg);
    expect(a).not.toEqual(b);
    expect([libVerify(publicKey, msg, a), libVerify(publicKey, msg, b)]).toEqual([true, true]);
  });

  it("refuses tampered messages, signatures and wrong keys, as libsignal does", () => {
    for (let i = 0; i < ROUNDS; i++) {
      const lib = PrivateKey.generate();
      const ours = generateKeyPair();
      const other = generateKeyPair().publicKey;
      const msg = message(i + 1);
      for (const [pub, sig] of [
        [lib.getPublicKey().serialize(), lib.sign(msg)],
        [ours.publicKey, xeddsaSign(ours.privateKey, msg)],
      ] as const) {
        const flip = (b: Uint8Array, index: number, bit = 1) => b.map((x, k) => (k === index ? x ^ bit : x));
        const cases: [Uint8Array, Uint8Array, Uint8Array][] = [
          [pub, msg.length ? flip(msg, i % msg.length) : new Uint8Array([1]), sig], // message byte
          [pub, concatBytes(msg, new Uint8Array([0])), sig], // message extended
          [pub, msg, flip(sig, i % 32)], // R byte
          [pub, msg, flip(sig, 32 + (i % 31))], // s byte
          [pub, msg, flip(sig, 63, 0x80)], // sign bit
          [pub, msg, flip(sig, 63, 0x40)], // s ≥ 2^253
          [other, msg, sig], // wrong key
          [flip(pub, 1 + (i % 32)), msg, sig], // key byte
        ];
        for (const [p, m, s] of cases) {
          expect(xeddsaVerify(p, m, s)).toBe(false);
          expect(libVerify(p, m, s)).toBe(false);
        }
      }
    }
  });

  it("agrees with libsignal on every single-bit change of a signature", () => {
    const lib = PrivateKey.generate();
    const pub = lib.getPublicKey().serialize();
    const msg = random(40);
    const sig = lib.sign(msg);
    const verifier = xeddsaVerifier(pub);
    for (let bit = 0; bit < 512; bit++) {
      const changed = Uint8Array.from(sig);
      changed[bit >> 3]! ^= 1 << (bit & 7);
      const expected = libVerify(pub, msg, changed);
      expect(xeddsaVerify(pub, msg, changed), `bit ${bit}`).toBe(expected);
      expect(verifier(msg, changed), `bit ${bit}`).toBe(expected);
    }
  });

  it("accepts s + ℓ below 2^253, like libsignal (which reduces s), and refuses s ≥ 2^253", () => {
    let checked = 0;
    for (let i = 0; checked < 10 && i < 100; i++) {
      const lib = PrivateKey.generate();
      const pub = lib.getPublicKey().serialize();
      const msg = message(i);
      const sig = lib.sign(msg);
      if (sOf(sig) + L >= 1n << 253n) continue; // true for most s: ℓ is just above 2^252
      const bigger = withS(sig, sOf(sig) + L);
      expect(libVerify(pub, msg, bigger)).toBe(true);
      expect(xeddsaVerify(pub, msg, bigger)).toBe(true);
      const tooBig = withS(sig, sOf(sig) + (1n << 253n));
      expect(libVerify(pub, msg, tooBig)).toBe(false);
      expect(xeddsaVerify(pub, msg, tooBig)).toBe(false);
      checked++;
    }
    expect(checked).toBe(10);
  });

  it("ignores the top bit of u and reads u mod p, like libsignal", () => {
    for (let i = 0; i < 10; i++) {
      const lib = PrivateKey.generate();
      const pub = lib.getPublicKey().serialize();
      const msg = message(i);
      const sig = lib.sign(msg);
      const highBit = Uint8Array.from(pub);
      highBit[32]! |= 0x80;
      expect(libVerify(highBit, msg, sig)).toBe(true);
      expect(xeddsaVerify(highBit, msg, sig)).toBe(true);
    }
  });

  it("matches libsignal on low-order and non-canonical keys, including u = 0 where a forgery verifies", () => {
    // For u = 0 the key point is (0, −1), of order 2: R = sB verifies whenever h is even. libsignal accepts
    // such a signature with either sign bit; so must we (keeping such keys out is a separate policy).
    const forge = (msg: Uint8Array, signBit: number) => {
      const A = ed25519.Point.Fp.toBytes(P - 1n); // y = −1, x = 0
      for (;;) {
        const s = ed25519.Point.Fn.create(bytesToNumberLE(random(40)));
        const R = ed25519.Point.BASE.multiply(s).toBytes();
        const h = ed25519.Point.Fn.create(bytesToNumberLE(sha512(concatBytes(R, A, msg))));
        if (h % 2n === 0n) return withS(concatBytes(R, new Uint8Array(32)), s).map((b, i) => (i === 63 ? b | (signBit << 7) : b));
      }
    };
    const msg = random(33);
    for (const pub of [rawKey(0n), rawKey(P)]) {
      for (const signBit of [0, 1]) {
        const sig = forge(msg, signBit);
        expect(libVerify(pub, msg, sig)).toBe(true);
        expect(xeddsaVerify(pub, msg, sig)).toBe(true);
        expect(xeddsaVerifier(pub)(msg, sig)).toBe(true);
      }
    }
    // Other special u: 1 (order 4), −1 (on the twist), non-canonical ones, one of order 8; same answers as libsignal.
    for (const u of [1n, P - 1n, P + 1n, (1n << 255n) - 1n, (1n << 256n) - 1n, ORDER_8_U]) {
      const pub = rawKey(u);
      for (let i = 0; i < 4; i++) {
        const sig = i < 2 ? forge(msg, i) : PrivateKey.generate().sign(msg);
        expect(xeddsaVerify(pub, msg, sig), `u=${u}`).toBe(libVerify(pub, msg, sig));
      }
    }
  });

  it("returns false, never throws, on malformed input", () => {
    const { publicKey, privateKey } = generateKeyPair();
    const msg = random(10);
    const sig = xeddsaSign(privateKey, msg);
    const bad: [unknown, unknown, unknown][] = [
      [publicKey.subarray(1), msg, sig],
      [concatBytes(publicKey, new Uint8Array(1)), msg, sig],
      [publicKey.map((b, i) => (i === 0 ? KEY_TYPE_KYBER1024 : b)), msg, sig],
      [new Uint8Array(0), msg, sig],
      [publicKey, msg, sig.subarray(0, 63)],
      [publicKey, msg, concatBytes(sig, new Uint8Array(1))],
      [publicKey, msg, new Uint8Array(64)],
      [publicKey, msg, new Uint8Array(64).fill(0xff)],
      [null, msg, sig],
      [publicKey, "hello", sig],
      [publicKey, msg, undefined],
      [Array.from(publicKey), msg, sig],
    ];
    for (const [p, m, s] of bad) {
      expect(xeddsaVerify(p as Uint8Array, m as Uint8Array, s as Uint8Array)).toBe(false);
      expect(xeddsaVerifier(p as Uint8Array)(m as Uint8Array, s as Uint8Array)).toBe(false);
    }
    // libsignal refuses the wrong-length signatures too (it accepts trailing bytes after a key; we do not).
    expect(libVerify(publicKey, msg, sig.subarray(0, 63))).toBe(false);
    expect(libVerify(publicKey, msg, concatBytes(sig, new Uint8Array(1)))).toBe(false);
  });

  it("has a verifier that answers exactly like xeddsaVerify, across sign bits and many uses", () => {
    const lib = PrivateKey.generate();
    const pub = lib.getPublicKey().serialize();
    const verifier = xeddsaVerifier(pub);
    for (let i = 0; i < ROUNDS; i++) {
      const msg = message(i);
      const good = lib.sign(msg);
      const variants = [good, good.map((b, k) => (k === 63 ? b ^ 0x80 : b)), good.map((b, k) => (k === i % 64 ? b ^ 4 : b))];
      for (const sig of variants) expect(verifier(msg, sig)).toBe(xeddsaVerify(pub, msg, sig));
      expect(verifier(msg, good)).toBe(true);
    }
  });

  it("refuses to sign with a malformed key or randomness", () => {
    expect(() => xeddsaSign(random(31), random(4))).toThrow(new KeyFormatError("private key must be 32 bytes, got 31"));
    expect(() => xeddsaSign(random(32), random(4), random(32))).toThrow(RangeError);
  });
});

describe("key format assertions", () => {
  it("accept libsignal's keys and ours", () => {
    for (let i = 0; i < 5; i++) {
      expect(() => assertEcPublicKey(PrivateKey.generate().getPublicKey().serialize(), "identity key")).not.toThrow();
      expect(() => assertEcPublicKey(generateKeyPair().publicKey, "identity key")).not.toThrow();
      expect(() => assertKyberPublicKey(KEMKeyPair.generate().getPublicKey().serialize(), "Kyber prekey")).not.toThrow();
      const ours = kyberKeyPair();
      expect(() => assertKyberPublicKey(ours.publicKey, "Kyber prekey")).not.toThrow();
      expect(KEMPublicKey.deserialize(ours.publicKey).serialize()).toEqual(ours.publicKey);
      expect(ours.secretKey.length).toBe(KEMKeyPair.generate().getSecretKey().serialize().length);
    }
  });

  it("refuse wrong lengths and type bytes with a message naming the key", () => {
    const ec = PrivateKey.generate().getPublicKey().serialize();
    const kyber = KEMKeyPair.generate().getPublicKey().serialize();
    const refusal = (f: () => void) => {
      try {
        f();
      } catch (error) {
        expect(error).toBeInstanceOf(KeyFormatError);
        expect(error).toBeInstanceOf(Error);
        return (error as Error).message;
      }
      throw new Error("not refused");
    };
    expect(refusal(() => assertEcPublicKey(ec.subarray(1), "identity key"))).toBe("identity key must be 33 bytes, got 32");
    expect(refusal(() => assertEcPublicKey(concatBytes(ec, new Uint8Array(1)), "identity key"))).toBe("identity key must be 33 bytes, got 34");
    expect(refusal(() => assertEcPublicKey(new Uint8Array(0), "signed prekey"))).toBe("signed prekey must be 33 bytes, got 0");
    expect(refusal(() => assertEcPublicKey(ec.map((b, i) => (i ? b : 0x08)), "preKeys[3]"))).toBe(
      "preKeys[3] must start with type byte 0x05, got 0x08",
    );
    expect(refusal(() => assertEcPublicKey("BQ==" as never, "identity key"))).toBe("identity key must be bytes");
    expect(refusal(() => assertKyberPublicKey(kyber.subarray(0, 1568), "Kyber prekey"))).toBe("Kyber prekey must be 1569 bytes, got 1568");
    expect(refusal(() => assertKyberPublicKey(ec, "Kyber prekey"))).toBe("Kyber prekey must be 1569 bytes, got 33");
    expect(refusal(() => assertKyberPublicKey(kyber.map((b, i) => (i ? b : 0x0a)), "last-resort Kyber prekey"))).toBe(
      "last-resort Kyber prekey must start with type byte 0x08, got 0x0a",
    );
  });
});

// --- the device-key fixtures ---------------------------------------------------------------------------

/** Checks sizes, base64 and key ids of a registration body, and returns its decoded signed parts. */
function checkBody(keys: DeviceKeysBody, preKeys: number, kyberPreKeys: number) {
  const fields = [keys.identityKey, keys.signedPreKey.publicKey, keys.signedPreKey.signature, keys.kyberLastResortPreKey.publicKey];
  for (const f of fields) expect(isBase64(f)).toBe(true);
  expect(keys.registrationId).toBeGreaterThanOrEqual(1);
  expect(keys.registrationId).toBeLessThanOrEqual(16380);
  expect(Object.keys(keys).sort()).toEqual(["identityKey", "kyberLastResortPreKey", "kyberPreKeys", "preKeys", "registrationId", "signedPreKey"]);
  expect(keys.preKeys.map((k) => k.keyId)).toEqual(Array.from({ length: preKeys }, (_, i) => i + 1));
  expect(keys.kyberPreKeys.map((k) => k.keyId)).toEqual(Array.from({ length: kyberPreKeys }, (_, i) => i + 1));
  expect(keys.kyberLastResortPreKey.keyId).toBe(kyberPreKeys + 1);
  assertEcPublicKey(b64(keys.identityKey), "identity key");
  assertEcPublicKey(b64(keys.signedPreKey.publicKey), "signed prekey");
  for (const k of keys.preKeys) assertEcPublicKey(b64(k.publicKey), "prekey");
  const signed = [
    { ...keys.signedPreKey, kind: "ec" as const },
    { ...keys.kyberLastResortPreKey, kind: "kyber" as const },
    ...keys.kyberPreKeys.map((k) => ({ ...k, kind: "kyber" as const })),
  ];
  for (const k of signed) {
    (k.kind === "ec" ? assertEcPublicKey : assertKyberPublicKey)(b64(k.publicKey), k.kind);
    expect(b64(k.signature).length).toBe(SIGNATURE_BYTES);
  }
  return { identityKey: b64(keys.identityKey), signed: signed.map((k) => ({ key: b64(k.publicKey), signature: b64(k.signature) })) };
}

class MemorySessions extends SessionStore {
  sessions = new Map<string, SessionRecord>();
  async saveSession(address: ProtocolAddress, record: SessionRecord) {
    this.sessions.set(address.toString(), record);
  }
  async getSession(address: ProtocolAddress) {
    return this.sessions.get(address.toString()) ?? null;
  }
  async getExistingSessions(addresses: ProtocolAddress[]) {
    return addresses.map((a) => this.sessions.get(a.toString())!);
  }
}

class MemoryIdentities extends IdentityKeyStore {
  known = new Map<string, PublicKey>();
  constructor(
    private readonly key: PrivateKey,
    private readonly registrationId: number,
  ) {
    super();
  }
  async getIdentityKey() {
    return this.key;
  }
  async getLocalRegistrationId() {
    return this.registrationId;
  }
  async saveIdentity(address: ProtocolAddress, key: PublicKey) {
    this.known.set(address.toString(), key);
    return IdentityChange.NewOrUnchanged;
  }
  async isTrustedIdentity(_address: ProtocolAddress, _key: PublicKey, _direction: Direction) {
    return true;
  }
  async getIdentity(address: ProtocolAddress) {
    return this.known.get(address.toString()) ?? null;
  }
}

class MemoryPreKeys extends PreKeyStore {
  constructor(readonly keys: Map<number, PreKeyRecord>) {
    super();
  }
  async savePreKey(id: number, record: PreKeyRecord) {
    this.keys.set(id, record);
  }
  async getPreKey(id: number) {
    const record = this.keys.get(id);
    if (!record) throw new Error(`no prekey ${id}`);
    return record;
  }
  async removePreKey(id: number) {
    this.keys.delete(id);
  }
}

class MemorySignedPreKeys extends SignedPreKeyStore {
  constructor(readonly keys: Map<number, SignedPreKeyRecord>) {
    super();
  }
  async saveSignedPreKey(id: number, record: SignedPreKeyRecord) {
    this.keys.set(id, record);
  }
  async getSignedPreKey(id: number) {
    const record = this.keys.get(id);
    if (!record) throw new Error(`no signed prekey ${id}`);
    return record;
  }
}

class MemoryKyberPreKeys extends KyberPreKeyStore {
  used: number[] = [];
  constructor(readonly keys: Map<number, KyberPreKeyRecord>) {
    super();
  }
  async saveKyberPreKey(id: number, record: KyberPreKeyRecord) {
    this.keys.set(id, record);
  }
  async getKyberPreKey(id: number) {
    const record = this.keys.get(id);
    if (!record) throw new Error(`no Kyber prekey ${id}`);
    return record;
  }
  async markKyberPreKeyUsed(id: number) {
    this.used.push(id);
  }
}

/** The bundle a server would hand out for this body: one-time keys when asked, else the last-resort Kyber key. */
function bundleFrom(keys: DeviceKeysBody, deviceId: number, oneTime: boolean): PreKeyBundle {
  const preKey = oneTime ? keys.preKeys[0] : undefined;
  const kyber = oneTime && keys.kyberPreKeys[0] ? keys.kyberPreKeys[0] : keys.kyberLastResortPreKey;
  return PreKeyBundle.new(
    keys.registrationId,
    deviceId,
    preKey ? preKey.keyId : null,
    preKey ? PublicKey.deserialize(b64(preKey.publicKey)) : null,
    keys.signedPreKey.keyId,
    PublicKey.deserialize(b64(keys.signedPreKey.publicKey)),
    b64(keys.signedPreKey.signature),
    PublicKey.deserialize(b64(keys.identityKey)),
    kyber.keyId,
    KEMPublicKey.deserialize(b64(kyber.publicKey)),
    b64(kyber.signature),
  );
}

describe("device-key fixtures", () => {
  it("libsignalDeviceKeys: a well-formed body whose signatures all verify with xeddsaVerify", () => {
    const { keys, identity, registrationId } = libsignalDeviceKeys({ preKeys: 4, kyberPreKeys: 3 });
    expect(registrationId).toBe(keys.registrationId);
    const { identityKey, signed } = checkBody(keys, 4, 3);
    expect(identityKey).toEqual(identity.getPublicKey().serialize());
    expect(signed).toHaveLength(1 + 1 + 3);
    const verifier = xeddsaVerifier(identityKey);
    for (const { key, signature } of signed) {
      expect(xeddsaVerify(identityKey, key, signature)).toBe(true);
      expect(verifier(key, signature)).toBe(true);
    }
    const defaults = libsignalDeviceKeys();
    checkBody(defaults.keys, 5, 5);
  });

  it("deviceKeys: a well-formed body (same shape and ids) whose signatures all verify with libsignal", () => {
    const { keys, identity, registrationId, secrets } = deviceKeys({ preKeys: 4, kyberPreKeys: 3 });
    expect(registrationId).toBe(keys.registrationId);
    const { identityKey, signed } = checkBody(keys, 4, 3);
    expect(identityKey).toEqual(identity.publicKey);
    const libIdentity = PublicKey.deserialize(identityKey);
    for (const { key, signature } of signed) expect(libIdentity.verify(key, signature)).toBe(true);
    // The private halves match the published keys.
    expect(PrivateKey.deserialize(secrets.signedPreKey).getPublicKey().serialize()).toEqual(b64(keys.signedPreKey.publicKey));
    for (const k of keys.preKeys) expect(PrivateKey.deserialize(secrets.preKeys.get(k.keyId)!).getPublicKey().serialize()).toEqual(b64(k.publicKey));
    expect([...secrets.kyberPreKeys.keys()].sort()).toEqual([1, 2, 3, 4]);
    checkBody(deviceKeys().keys, 5, 5);
    checkBody(deviceKeys({ preKeys: 0, kyberPreKeys: 0 }).keys, 0, 0);
  });

  it("deviceKeys: libsignal builds a session from the bundle (it checks both prekey signatures)", async () => {
    const { keys } = deviceKeys({ preKeys: 1, kyberPreKeys: 1 });
    for (const oneTime of [true, false]) {
      const alice = PrivateKey.generate();
      const sessions = new MemorySessions();
      const bob = ProtocolAddress.new("bob", 1);
      await processPreKeyBundle(bundleFrom(keys, 1, oneTime), bob, ProtocolAddress.new("alice", 1), sessions, new MemoryIdentities(alice, 1));
      expect(await sessions.getSession(bob)).not.toBeNull();
    }
    // A bundle whose signature is not the identity key's is refused by libsignal.
    const forged = { ...keys, signedPreKey: { ...keys.signedPreKey, signature: deviceKeys().keys.signedPreKey.signature } };
    await expect(
      processPreKeyBundle(bundleFrom(forged, 1, true), ProtocolAddress.new("bob", 1), ProtocolAddress.new("alice", 1), new MemorySessions(), new MemoryIdentities(PrivateKey.generate(), 1)),
    ).rejects.toThrow();
  });

  it("libsignalDeviceKeys: the records decrypt a first message sent to the published bundle", async () => {
    const bobDevice = libsignalDeviceKeys({ preKeys: 2, kyberPreKeys: 2 });
    const alice = ProtocolAddress.new("alice", 1);
    const bob = ProtocolAddress.new("bob", 1);
    const aliceSessions = new MemorySessions();
    const aliceIdentities = new MemoryIdentities(PrivateKey.generate(), 7);
    const { records } = bobDevice;
    for (const oneTime of [true, false]) {
      await processPreKeyBundle(bundleFrom(bobDevice.keys, 1, oneTime), bob, alice, aliceSessions, aliceIdentities);
      const text = bytes(new TextEncoder().encode(`hello ${oneTime}`));
      const ciphertext = await signalEncrypt(text, bob, alice, aliceSessions, aliceIdentities);
      const kyberStore = new MemoryKyberPreKeys(new Map([...records.kyberPreKeys, records.kyberLastResortPreKey].map((r) => [r.id(), r])));
      const plaintext = await signalDecryptPreKey(
        PreKeySignalMessage.deserialize(ciphertext.serialize()),
        alice,
        bob,
        new MemorySessions(),
        new MemoryIdentities(bobDevice.identity, bobDevice.registrationId),
        new MemoryPreKeys(new Map(records.preKeys.map((r) => [r.id(), r]))),
        new MemorySignedPreKeys(new Map([[records.signedPreKey.id(), records.signedPreKey]])),
        kyberStore,
      );
      expect(new TextDecoder().decode(plaintext)).toBe(`hello ${oneTime}`);
      expect(kyberStore.used).toEqual([oneTime ? 1 : 3]);
    }
  });
});
