/**
 * Kyber1024 (round 3), the KEM of libsignal's PQXDH, built on @noble/post-quantum's ML-KEM-1024.
 *
 * Keys and ciphertexts of round-3 Kyber and FIPS-203 ML-KEM have identical formats; only the shared
 * secret differs (SIGNAL-COMPAT.md): round 3 encapsulates with m = SHA3-256(32 random bytes) and
 * outputs SHAKE256(K̄ ‖ SHA3-256(ct)) truncated to 32 bytes, where K̄ is what ML-KEM outputs for that m.
 * Serialized forms carry libsignal's type byte 0x08: public key 1569 bytes, secret key 3169,
 * ciphertext 1569.
 *
 * One difference remains and is harmless: on a ciphertext that fails re-encryption, ML-KEM's implicit
 * rejection value differs from round 3's, so our "garbage" secret differs from libsignal's garbage
 * secret. Both sides then fail the message MAC, which is all that matters.
 */
import { ml_kem1024 } from "@noble/post-quantum/ml-kem.js";
import { sha3_256, shake256 } from "@noble/hashes/sha3.js";
import { KEY_TYPE_KYBER1024, KYBER1024_PUBLIC_KEY_BYTES } from "../../src/protocol/keys";
import { concatBytes, randomBytes } from "./bytes";
import { InvalidKeyError } from "./errors";

/** Serialized Kyber1024 secret key: `0x08` ‖ 3168 bytes. */
export const KYBER1024_SECRET_KEY_BYTES = 3169;
/** Serialized Kyber1024 ciphertext: `0x08` ‖ 1568 bytes. */
export const KYBER1024_CIPHERTEXT_BYTES = 1569;
/** Kyber shared secrets are 32 bytes. */
export const KYBER_SHARED_SECRET_BYTES = 32;

/** A Kyber1024 key pair in libsignal's serialization (both halves prefixed with 0x08). */
export interface KyberKeyPair {
  publicKey: Uint8Array;
  secretKey: Uint8Array;
}

function unprefix(bytes: Uint8Array, length: number, what: string): Uint8Array {
  if (!(bytes instanceof Uint8Array) || bytes.length !== length) {
    throw new InvalidKeyError(`${what} must be ${length} bytes, got ${bytes instanceof Uint8Array ? bytes.length : typeof bytes}`);
  }
  if (bytes[0] !== KEY_TYPE_KYBER1024) throw new InvalidKeyError(`${what} must start with type byte 0x08, got 0x${bytes[0]!.toString(16).padStart(2, "0")}`);
  return bytes.subarray(1);
}

function prefix(raw: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(raw.length + 1);
  out[0] = KEY_TYPE_KYBER1024;
  out.set(raw, 1);
  return out;
}

/** Round 3's final step: SHAKE256(K̄ ‖ SHA3-256(ciphertext)) truncated to 32 bytes. */
function roundThreeSecret(kBar: Uint8Array, rawCiphertext: Uint8Array): Uint8Array {
  return shake256(concatBytes(kBar, sha3_256(rawCiphertext)), { dkLen: KYBER_SHARED_SECRET_BYTES });
}

/**
 * Generates a Kyber1024 key pair, serialized as libsignal does. `seed` (64 bytes) makes it
 * deterministic (tests only). Any seed yields a valid round-3 key: only the derivation differs.
 * @example
 * const { publicKey, secretKey } = generateKyberKeyPair(); // 1569 and 3169 bytes
 */
export function generateKyberKeyPair(seed?: Uint8Array): KyberKeyPair {
  const { publicKey, secretKey } = ml_kem1024.keygen(seed);
  return { publicKey: prefix(publicKey), secretKey: prefix(secretKey) };
}

/**
 * Encapsulates to a serialized Kyber1024 public key: returns the serialized ciphertext (1569 bytes)
 * and the 32-byte round-3 shared secret. `random` (32 bytes) makes it deterministic (tests only).
 * Throws {@link InvalidKeyError} on a malformed key.
 */
export function kyberEncapsulate(publicKey: Uint8Array, random?: Uint8Array): { ciphertext: Uint8Array; sharedSecret: Uint8Array } {
  const raw = unprefix(publicKey, KYBER1024_PUBLIC_KEY_BYTES, "Kyber public key");
  const m = sha3_256(random ?? randomBytes(32));
  let result: { cipherText: Uint8Array; sharedSecret: Uint8Array };
  try {
    result = ml_kem1024.encapsulate(raw, m);
  } catch (error) {
    throw new InvalidKeyError(`Kyber public key is not usable: ${(error as Error).message}`);
  }
  return { ciphertext: prefix(result.cipherText), sharedSecret: roundThreeSecret(result.sharedSecret, result.cipherText) };
}

/**
 * Decapsulates a serialized Kyber1024 ciphertext with a serialized secret key; returns the 32-byte
 * round-3 shared secret. Throws {@link InvalidKeyError} on a malformed key or ciphertext.
 */
export function kyberDecapsulate(secretKey: Uint8Array, ciphertext: Uint8Array): Uint8Array {
  const rawKey = unprefix(secretKey, KYBER1024_SECRET_KEY_BYTES, "Kyber secret key");
  const rawCiphertext = unprefix(ciphertext, KYBER1024_CIPHERTEXT_BYTES, "Kyber ciphertext");
  let kBar: Uint8Array;
  try {
    kBar = ml_kem1024.decapsulate(rawCiphertext, rawKey);
  } catch (error) {
    throw new InvalidKeyError(`Kyber secret key is not usable: ${(error as Error).message}`);
  }
  return roundThreeSecret(kBar, rawCiphertext);
}
