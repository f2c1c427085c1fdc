/** AES-256-CBC with PKCS#7 padding, the body cipher of SignalMessage (via @noble/ciphers; synchronous, runs everywhere). */
import { cbc } from "@noble/ciphers/aes.js";
import { InvalidMessageError } from "./errors";

/** Encrypts `plaintext` under a 32-byte key and 16-byte IV with PKCS#7 padding. */
export function aesCbcEncrypt(key: Uint8Array, iv: Uint8Array, plaintext: Uint8Array): Uint8Array {
  return cbc(key, iv).encrypt(plaintext);
}

/** Decrypts and unpads; throws {@link InvalidMessageError} on a bad length or padding. */
export function aesCbcDecrypt(key: Uint8Array, iv: Uint8Array, ciphertext: Uint8Array): Uint8Array {
  if (ciphertext.length === 0 || ciphertext.length % 16 !== 0) {
    throw new InvalidMessageError(`failed to decrypt: ciphertext length ${ciphertext.length} is not a positive multiple of 16`);
  }
  try {
    return cbc(key, iv).decrypt(ciphertext);
  } catch {
    throw new InvalidMessageError("failed to decrypt: invalid padding");
  }
}
