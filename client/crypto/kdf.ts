/**
 * The key derivations of libsignal's PQXDH and Double Ratchet (labels and layouts in SIGNAL-COMPAT.md),
 * composed from @noble/hashes' HKDF-SHA256 and HMAC-SHA256.
 */
import { hkdf } from "@noble/hashes/hkdf.js";
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { label } from "./bytes";

const PQXDH_INFO = label("WhisperText_X25519_SHA-256_CRYSTALS-KYBER-1024");
const RATCHET_INFO = label("WhisperRatchet");
const MESSAGE_KEYS_INFO = label("WhisperMessageKeys");
const MESSAGE_KEY_SEED = Uint8Array.of(0x01);
const CHAIN_KEY_SEED = Uint8Array.of(0x02);

/** What PQXDH hands the ratchet: root key, first chain key and the SPQR authentication key (32 bytes each). */
export interface HandshakeKeys {
  rootKey: Uint8Array;
  chainKey: Uint8Array;
  pqrKey: Uint8Array;
}

/** HKDF(salt none, ikm = PQXDH secret input, info `WhisperText_X25519_SHA-256_CRYSTALS-KYBER-1024`) → 96 bytes, split in three. */
export function deriveHandshakeKeys(secretInput: Uint8Array): HandshakeKeys {
  const okm = hkdf(sha256, secretInput, undefined, PQXDH_INFO, 96);
  return { rootKey: okm.slice(0, 32), chainKey: okm.slice(32, 64), pqrKey: okm.slice(64, 96) };
}

/** Root step: HKDF(salt = root key, ikm = DH output, info `WhisperRatchet`) → new root key ‖ new chain key. */
export function rootStep(rootKey: Uint8Array, dhOutput: Uint8Array): { rootKey: Uint8Array; chainKey: Uint8Array } {
  const okm = hkdf(sha256, dhOutput, rootKey, RATCHET_INFO, 64);
  return { rootKey: okm.slice(0, 32), chainKey: okm.slice(32, 64) };
}

/** A chain key's message-key seed: HMAC-SHA256(chain key, 0x01). */
export function messageKeySeed(chainKey: Uint8Array): Uint8Array {
  return hmac(sha256, chainKey, MESSAGE_KEY_SEED);
}

/** The next chain key: HMAC-SHA256(chain key, 0x02). */
export function nextChainKey(chainKey: Uint8Array): Uint8Array {
  return hmac(sha256, chainKey, CHAIN_KEY_SEED);
}

/** A message's keys: AES-256 key, HMAC-SHA256 key and CBC IV. */
export interface MessageKeys {
  cipherKey: Uint8Array;
  macKey: Uint8Array;
  iv: Uint8Array;
}

/** HKDF(salt = SPQR message key or none, ikm = seed, info `WhisperMessageKeys`) → 80 bytes: cipher key ‖ MAC key ‖ IV. */
export function deriveMessageKeys(seed: Uint8Array, spqrKey: Uint8Array | undefined): MessageKeys {
  const okm = hkdf(sha256, seed, spqrKey, MESSAGE_KEYS_INFO, 80);
  return { cipherKey: okm.slice(0, 32), macKey: okm.slice(32, 64), iv: okm.slice(64, 80) };
}

/** HMAC-SHA256(key, data), full 32 bytes. */
export function hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array {
  return hmac(sha256, key, data);
}
