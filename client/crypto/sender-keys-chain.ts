/**
 * The sender chain of Signal's sender keys (libsignal `sender_keys.rs`): chain key → next chain key by
 * HMAC-SHA256(chain key, 0x02); message seed = HMAC-SHA256(chain key, 0x01); message key =
 * HKDF-SHA256(no salt, seed, info "WhisperGroup") → 48 bytes: IV (16) ‖ AES-256 key (32). Bodies are AES-256-CBC
 * with PKCS#7 padding (WebCrypto, so native AES everywhere: browsers, Node, Workers).
 */
import { hkdf } from "@noble/hashes/hkdf.js";
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { SenderKeyError } from "./sender-keys-errors";

const MESSAGE_KEY_SEED = Uint8Array.of(0x01);
const CHAIN_KEY_SEED = Uint8Array.of(0x02);
const WHISPER_GROUP = /* @__PURE__ */ new TextEncoder().encode("WhisperGroup");
const MAX_ITERATION = 0xffffffff;

/** A chain key at an iteration (libsignal's `SenderChainKey`; `seed` is the 32-byte chain key). */
export interface ChainKey {
  iteration: number;
  seed: Uint8Array;
}

/** The next chain key; throws `chain-exhausted` at iteration 2³²−1, as libsignal does. */
export function nextChainKey(chain: ChainKey): ChainKey {
  if (chain.iteration >= MAX_ITERATION) throw new SenderKeyError("chain-exhausted", "sender chain is too long");
  return { iteration: chain.iteration + 1, seed: hmac(sha256, chain.seed, CHAIN_KEY_SEED) };
}

/** The message seed of a chain key (what libsignal stores for a skipped message). */
export function messageSeed(chain: ChainKey): Uint8Array {
  return hmac(sha256, chain.seed, MESSAGE_KEY_SEED);
}

/** AES-256-CBC key and IV of one message, derived from its seed. */
export function messageKeys(seed: Uint8Array): { iv: Uint8Array<ArrayBuffer>; key: Uint8Array<ArrayBuffer> } {
  const derived = hkdf(sha256, seed, undefined, WHISPER_GROUP, 48);
  return { iv: derived.slice(0, 16), key: derived.slice(16, 48) };
}

const AES_CBC = "AES-CBC";

/** AES-256-CBC with PKCS#7 padding. */
export async function aes256CbcEncrypt(key: Uint8Array<ArrayBuffer>, iv: Uint8Array<ArrayBuffer>, plaintext: Uint8Array): Promise<Uint8Array<ArrayBuffer>> {
  const k = await crypto.subtle.importKey("raw", key, AES_CBC, false, ["encrypt"]);
  return new Uint8Array(await crypto.subtle.encrypt({ name: AES_CBC, iv }, k, Uint8Array.from(plaintext)));
}

/** AES-256-CBC decryption; returns undefined when the ciphertext is empty, not whole blocks, or badly padded. */
export async function aes256CbcDecrypt(key: Uint8Array<ArrayBuffer>, iv: Uint8Array<ArrayBuffer>, ciphertext: Uint8Array): Promise<Uint8Array<ArrayBuffer> | undefined> {
  if (ciphertext.length === 0 || ciphertext.length % 16 !== 0) return undefined;
  const k = await crypto.subtle.importKey("raw", key, AES_CBC, false, ["decrypt"]);
  try {
    return new Uint8Array(await crypto.subtle.decrypt({ name: AES_CBC, iv }, k, Uint8Array.from(ciphertext)));
  } catch {
    return undefined;
  }
}
