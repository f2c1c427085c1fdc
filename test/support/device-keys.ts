/**
 * Device registration bodies built with Relay's own `src/protocol/keys.ts`: no libsignal and no `node:`
 * imports, so this runs in Node and inside workerd alike. Kyber keys come from `@noble/post-quantum`'s
 * ML-KEM-1024, whose key format is Kyber1024 round 3's (SIGNAL-COMPAT.md), with libsignal's 0x08 type byte.
 * `test/node/support/libsignal-device.ts` builds the same shape with libsignal itself.
 */
import { ml_kem1024 } from "@noble/post-quantum/ml-kem.js";
import { toBase64 } from "../../src/protocol/base64";
import { KEY_TYPE_KYBER1024, generateKeyPair, xeddsaSign, type IdentityKeyPair } from "../../src/protocol/keys";
import type { DeviceKeys as DeviceKeysFromProtocol } from "../../src/protocol/http";

/** A device's public keys as registration sends them (the server's schema; byte fields are standard padded base64). */
export type DeviceKeysBody = DeviceKeysFromProtocol;

/** How many one-time prekeys to make (defaults {@link DEFAULT_PRE_KEYS} and {@link DEFAULT_KYBER_PRE_KEYS}). */
export interface DeviceKeysOptions {
  preKeys?: number;
  kyberPreKeys?: number;
}

export const DEFAULT_PRE_KEYS = 5;
export const DEFAULT_KYBER_PRE_KEYS = 5;

/**
 * Key ids both fixtures use: signed prekey 1; one-time EC prekeys 1..n; one-time Kyber prekeys 1..m and
 * the last-resort Kyber prekey m + 1 (Kyber ids share one namespace, EC prekey ids another).
 */
export function fixtureKeyIds(preKeys: number, kyberPreKeys: number) {
  const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1);
  return { signedPreKey: 1, preKeys: range(preKeys), kyberPreKeys: range(kyberPreKeys), kyberLastResortPreKey: kyberPreKeys + 1 };
}

/** A random registration id in 1..16380, as Signal clients pick them. */
export function randomRegistrationId(): number {
  return 1 + (crypto.getRandomValues(new Uint32Array(1))[0]! % 16380);
}

/** A Kyber1024 key pair in libsignal's serialization: public 0x08 ‖ 1568 bytes, secret 0x08 ‖ 3168 bytes. */
export function kyberKeyPair(): { publicKey: Uint8Array<ArrayBuffer>; secretKey: Uint8Array<ArrayBuffer> } {
  const { publicKey, secretKey } = ml_kem1024.keygen();
  const prefixed = (key: Uint8Array) => {
    const out = new Uint8Array(key.length + 1);
    out[0] = KEY_TYPE_KYBER1024;
    out.set(key, 1);
    return out;
  };
  return { publicKey: prefixed(publicKey), secretKey: prefixed(secretKey) };
}

/** Private halves of a {@link deviceKeys} body, for tests that go on to run the protocol (keyed by key id). */
export interface DeviceSecrets {
  signedPreKey: Uint8Array<ArrayBuffer>;
  preKeys: Map<number, Uint8Array<ArrayBuffer>>;
  /** Serialized Kyber secret keys (0x08 ‖ 3168), one-time and last-resort alike. */
  kyberPreKeys: Map<number, Uint8Array<ArrayBuffer>>;
}

/** Builds a valid device registration body with Relay's keys.ts (see {@link fixtureKeyIds} for the ids). */
export function deviceKeys(opts: DeviceKeysOptions = {}): {
  registrationId: number;
  identity: IdentityKeyPair;
  keys: DeviceKeysBody;
  secrets: DeviceSecrets;
} {
  const ids = fixtureKeyIds(opts.preKeys ?? DEFAULT_PRE_KEYS, opts.kyberPreKeys ?? DEFAULT_KYBER_PRE_KEYS);
  const identity = generateKeyPair();
  const secrets: DeviceSecrets = { signedPreKey: new Uint8Array(0), preKeys: new Map(), kyberPreKeys: new Map() };
  const signed = (keyId: number, publicKey: Uint8Array) => ({
    keyId,
    publicKey: toBase64(publicKey),
    signature: toBase64(xeddsaSign(identity.privateKey, publicKey)),
  });
  const kyber = (keyId: number) => {
    const pair = kyberKeyPair();
    secrets.kyberPreKeys.set(keyId, pair.secretKey);
    return signed(keyId, pair.publicKey);
  };

  const signedPreKey = generateKeyPair();
  secrets.signedPreKey = signedPreKey.privateKey;
  const registrationId = randomRegistrationId();
  const keys: DeviceKeysBody = {
    registrationId,
    identityKey: toBase64(identity.publicKey),
    signedPreKey: signed(ids.signedPreKey, signedPreKey.publicKey),
    kyberLastResortPreKey: kyber(ids.kyberLastResortPreKey),
    preKeys: ids.preKeys.map((keyId) => {
      const pair = generateKeyPair();
      secrets.preKeys.set(keyId, pair.privateKey);
      return { keyId, publicKey: toBase64(pair.publicKey) };
    }),
    kyberPreKeys: ids.kyberPreKeys.map(kyber),
  };
  return { registrationId, identity, keys, secrets };
}
