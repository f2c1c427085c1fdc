/** Byte helpers shared by the session modules (composition of @noble utilities and WebCrypto randomness). */
import { equalBytes } from "@noble/curves/utils.js";
import { concatBytes, utf8ToBytes } from "@noble/hashes/utils.js";

export { concatBytes };

/** `n` bytes from the platform CSPRNG (`crypto.getRandomValues`: browsers, Workers and Node alike). */
export function randomBytes(n: number): Uint8Array<ArrayBuffer> {
  return crypto.getRandomValues(new Uint8Array(n));
}

/** Constant-time equality of two byte strings (false when the lengths differ). */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return equalBytes(a, b);
}

/** UTF-8 bytes of a KDF label. */
export function label(text: string): Uint8Array {
  return utf8ToBytes(text);
}

/** 4-byte big-endian encoding of an unsigned 32-bit integer. */
export function u32be(n: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n >>> 0, false);
  return out;
}

/** A copy of `bytes` backed by its own ArrayBuffer (never a view into a larger buffer). */
export function copyBytes(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return Uint8Array.from(bytes);
}
