/**
 * Key encodings and XEdDSA signatures, wire-compatible with Signal's libsignal.
 *
 * Runs unchanged in Workers, browsers and Node: only `@noble/*` and WebCrypto's `getRandomValues`.
 * XEdDSA is composed from @noble/curves' Edwards arithmetic and @noble/hashes' SHA-512, following
 * libsignal's `curve25519.rs` (which differs from the XEdDSA paper in one way: the signer's scalar is
 * never negated; instead the Edwards sign bit of its public point rides in the top bit of the
 * signature's last byte).
 */
import { ed25519, x25519 } from "@noble/curves/ed25519.js";
import { bytesToNumberLE, concatBytes, equalBytes } from "@noble/curves/utils.js";
import { sha512 } from "@noble/hashes/sha2.js";

/** Type byte of a serialized Curve25519 public key. */
export const KEY_TYPE_DJB = 0x05;
/** Type byte of a serialized Kyber1024 (round 3) public key. */
export const KEY_TYPE_KYBER1024 = 0x08;
/** Serialized Curve25519 public key: `0x05` ‖ 32-byte Montgomery u-coordinate. */
export const EC_PUBLIC_KEY_BYTES = 33;
/** Serialized Kyber1024 public key: `0x08` ‖ 1568 bytes. */
export const KYBER1024_PUBLIC_KEY_BYTES = 1569;
/** XEdDSA signature: R (32) ‖ s (32), the signer's Edwards sign bit in the top bit of the last byte. */
export const SIGNATURE_BYTES = 64;
/** Curve25519 private keys (clamped X25519 scalars, as libsignal serializes them). */
export const PRIVATE_KEY_BYTES = 32;

/** A key has the wrong length or type byte; the message names the key and what is wrong. */
export class KeyFormatError extends Error {
  override name = "KeyFormatError";
}

function assertSerializedKey(bytes: Uint8Array, what: string, length: number, type: number): void {
  if (!(bytes instanceof Uint8Array)) throw new KeyFormatError(`${what} must be bytes`);
  if (bytes.length !== length) throw new KeyFormatError(`${what} must be ${length} bytes, got ${bytes.length}`);
  if (bytes[0] !== type) throw new KeyFormatError(`${what} must start with type byte ${hexByte(type)}, got ${hexByte(bytes[0]!)}`);
}

const hexByte = (b: number) => "0x" + b.toString(16).padStart(2, "0");

/** Throws {@link KeyFormatError} unless `bytes` is a 33-byte serialized Curve25519 key (`0x05` ‖ u). `what` names the key in the message. */
export function assertEcPublicKey(bytes: Uint8Array, what: string): void {
  assertSerializedKey(bytes, what, EC_PUBLIC_KEY_BYTES, KEY_TYPE_DJB);
}

/** Throws {@link KeyFormatError} unless `bytes` is a 1569-byte serialized Kyber1024 key (`0x08` ‖ 1568). `what` names the key in the message. */
export function assertKyberPublicKey(bytes: Uint8Array, what: string): void {
  assertSerializedKey(bytes, what, KYBER1024_PUBLIC_KEY_BYTES, KEY_TYPE_KYBER1024);
}

/** Serializes a 32-byte X25519 public key (u-coordinate) as libsignal does: `0x05` ‖ u. */
export function serializeEcPublicKey(u: Uint8Array): Uint8Array<ArrayBuffer> {
  if (!(u instanceof Uint8Array) || u.length !== 32) throw new KeyFormatError(`raw public key must be 32 bytes, got ${u?.length}`);
  const out = new Uint8Array(EC_PUBLIC_KEY_BYTES);
  out[0] = KEY_TYPE_DJB;
  out.set(u, 1);
  return out;
}

/** A Curve25519 key pair: `publicKey` serialized (33 bytes), `privateKey` the clamped 32-byte scalar. */
export interface IdentityKeyPair {
  publicKey: Uint8Array<ArrayBuffer>;
  privateKey: Uint8Array<ArrayBuffer>;
}

/** Generates an X25519 key pair; the private key is stored clamped, exactly as libsignal serializes its keys. */
export function generateKeyPair(): IdentityKeyPair {
  const privateKey = clamp(x25519.utils.randomSecretKey());
  return { publicKey: serializeEcPublicKey(x25519.getPublicKey(privateKey)), privateKey };
}

const Point = ed25519.Point;
const Fp = Point.Fp;
const Fn = Point.Fn;
/** Domain separator of the nonce hash: 0xFE ‖ 31 × 0xFF (the XEdDSA paper's hash_1 prefix). */
const NONCE_PREFIX = /* @__PURE__ */ (() => new Uint8Array(32).fill(0xff).fill(0xfe, 0, 1))();
const U_MASK = (1n << 255n) - 1n;

/** X25519 clamping (RFC 7748), which libsignal applies to every private key it loads. */
function clamp(key: Uint8Array): Uint8Array<ArrayBuffer> {
  const k = Uint8Array.from(key);
  k[0]! &= 248;
  k[31]! &= 127;
  k[31]! |= 64;
  return k;
}

/** SHA-512 of the parts, read as a little-endian integer mod the group order ℓ. */
const hashToScalar = (...parts: Uint8Array[]): bigint => Fn.create(bytesToNumberLE(sha512(concatBytes(...parts))));

/** A = aB for the clamped key `k`, remembered for the last few signing keys (a sender key signs every group message). */
const publicPoints = new Map<string, Uint8Array>();
const PUBLIC_POINT_CACHE = 32;

function publicPoint(k: Uint8Array, a: bigint): Uint8Array {
  const id = String.fromCharCode(...k);
  let A = publicPoints.get(id);
  if (!A) {
    A = Point.BASE.multiply(a).toBytes();
    if (publicPoints.size >= PUBLIC_POINT_CACHE) publicPoints.delete(publicPoints.keys().next().value!);
    publicPoints.set(id, A);
  }
  return A;
}

/**
 * XEdDSA signature over `message`, exactly as libsignal's `PrivateKey.sign` makes it: a = clamp(k) mod ℓ,
 * A = aB (not negated), r = SHA-512(0xFE ‖ 31×0xFF ‖ clamp(k) ‖ M ‖ Z), R = rB, h = SHA-512(R ‖ A ‖ M),
 * s = ha + r; the result is R ‖ s with A's sign bit in the top bit of byte 63.
 * `random` is Z (64 bytes, default from `crypto.getRandomValues`); with a fixed Z the output is deterministic.
 */
export function xeddsaSign(privateKey: Uint8Array, message: Uint8Array, random?: Uint8Array): Uint8Array<ArrayBuffer> {
  if (!(privateKey instanceof Uint8Array) || privateKey.length !== PRIVATE_KEY_BYTES) {
    throw new KeyFormatError(`private key must be ${PRIVATE_KEY_BYTES} bytes, got ${privateKey?.length}`);
  }
  const z = random ?? crypto.getRandomValues(new Uint8Array(64));
  if (z.length !== 64) throw new RangeError(`XEdDSA randomness must be 64 bytes, got ${z.length}`);
  const k = clamp(privateKey);
  const a = Fn.create(bytesToNumberLE(k)); // never 0: a clamped scalar is no multiple of ℓ
  const A = publicPoint(k, a);
  const r = hashToScalar(NONCE_PREFIX, k, message, z);
  const R = Point.BASE.multiply(r).toBytes();
  const s = Fn.add(Fn.mul(hashToScalar(R, A, message), a), r);
  const signature = concatBytes(R, Fn.toBytes(s));
  signature[63] = (signature[63]! & 0x7f) | (A[31]! & 0x80);
  return signature;
}

/** −A and A's 32-byte encoding, A being the Edwards point for Montgomery u and a sign bit as curve25519-dalek's `to_edwards` finds it. */
function edwardsFromMontgomery(uBytes: Uint8Array, sign: number) {
  const u = Fp.create(bytesToNumberLE(uBytes) & U_MASK); // dalek ignores bit 255 and reads u mod p
  if (u === Fp.ORDER - 1n) return undefined; // u = −1 is on the twist, not the curve
  const y = Fp.div(Fp.sub(u, Fp.ONE), Fp.add(u, Fp.ONE));
  const encoded = Fp.toBytes(y);
  // u = 0 maps to (0, −1), whose x has no sign: dalek ignores the sign bit there, noble refuses it.
  if (u !== 0n) encoded[31]! |= sign << 7;
  const point = Point.fromBytes(encoded); // throws when y is not on the curve
  return { negated: point.negate(), encoded };
}

type EdwardsKey = NonNullable<ReturnType<typeof edwardsFromMontgomery>>;

/** The XEdDSA check of curve25519.rs `verify_signature`, given the decoded public point. */
function verifyWithPoint(key: EdwardsKey, message: Uint8Array, signature: Uint8Array): boolean {
  const R = signature.subarray(0, 32);
  const sBytes = signature.slice(32, 64);
  sBytes[31]! &= 0x7f; // the sign bit
  if (sBytes[31]! & 0xe0) return false; // s must be below 2^253 (not necessarily below ℓ: libsignal reduces it)
  const s = Fn.create(bytesToNumberLE(sBytes));
  const h = hashToScalar(R, key.encoded, message);
  // R' = sB − hA (variable time: all inputs are public), compared with R byte for byte, so a
  // non-canonical R never matches. B has noble's precomputed table; −A gets one in xeddsaVerifier.
  const check = Point.BASE.multiplyUnsafe(s).add(key.negated.multiplyUnsafe(h));
  return equalBytes(check.toBytes(), R);
}

function isSignatureInput(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  return (
    publicKey instanceof Uint8Array &&
    publicKey.length === EC_PUBLIC_KEY_BYTES &&
    publicKey[0] === KEY_TYPE_DJB &&
    message instanceof Uint8Array &&
    signature instanceof Uint8Array &&
    signature.length === SIGNATURE_BYTES
  );
}

/**
 * Verifies an XEdDSA signature as libsignal's `PublicKey.verify` does. `publicKey` is the 33-byte serialized key.
 * Returns false (never throws) on any bad input. To check many signatures by one key, {@link xeddsaVerifier} is faster.
 */
export function xeddsaVerify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  try {
    if (!isSignatureInput(publicKey, message, signature)) return false;
    const key = edwardsFromMontgomery(publicKey.subarray(1), signature[63]! >> 7);
    return key !== undefined && verifyWithPoint(key, message, signature);
  } catch {
    return false;
  }
}

/** wNAF window for a verifier's key table: ~5 ms to build in Node, then each check costs about a third of a one-shot one. */
const VERIFIER_WINDOW = 4;

/**
 * A verifier bound to one 33-byte serialized public key, for checking many signatures by the same key
 * (a device's prekey upload). The key is decoded once per sign bit, and from the second signature on its
 * point gets a precomputed multiplication table, making each further check about 3× faster than
 * {@link xeddsaVerify}. Same results as {@link xeddsaVerify}; never throws (an unusable key fails every check).
 */
export function xeddsaVerifier(publicKey: Uint8Array): (message: Uint8Array, signature: Uint8Array) => boolean {
  const key = publicKey instanceof Uint8Array ? Uint8Array.from(publicKey) : new Uint8Array(0);
  // By sign bit: undefined = not decoded yet, null = not a curve point.
  const decoded: (EdwardsKey | null | undefined)[] = [undefined, undefined];
  const uses = [0, 0];
  return (message, signature) => {
    try {
      if (!isSignatureInput(key, message, signature)) return false;
      const sign = signature[63]! >> 7;
      if (decoded[sign] === undefined) {
        try {
          decoded[sign] = edwardsFromMontgomery(key.subarray(1), sign) ?? null;
        } catch {
          decoded[sign] = null;
        }
      }
      const point = decoded[sign];
      if (!point) return false;
      if (++uses[sign]! === 2) point.negated.precompute(VERIFIER_WINDOW);
      return verifyWithPoint(point, message, signature);
    } catch {
      return false;
    }
  };
}
