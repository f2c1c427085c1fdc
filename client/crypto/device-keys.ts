/**
 * A new device's keys: identity, registration id, signed EC prekey, signed last-resort Kyber prekey and
 * pools of one-time EC and signed one-time Kyber prekeys. {@link generateDeviceKeys} returns the private
 * material (for a {@link ProtocolStore}) and the public registration body the server takes.
 */
import { toBase64 } from "../../src/protocol/base64";
import { generateKeyPair, xeddsaSign } from "../../src/protocol/keys";
import type { KeyPair } from "./curve";
import { generateKyberKeyPair, type KyberKeyPair } from "./kem";
import { InMemoryProtocolStore } from "./store";
import type { ProtocolAddress } from "./address";
import type { DeviceKeys as DeviceKeysFromProtocol } from "../../src/protocol/http";

/** A device's public keys as registration sends them (the server's schema; byte fields are standard padded base64). */
export type DeviceKeysBody = DeviceKeysFromProtocol;

/** A signed EC prekey with its private half. */
export interface SignedPreKey {
  keyId: number;
  keyPair: KeyPair;
  signature: Uint8Array;
}

/** A signed Kyber prekey with its secret half. */
export interface KyberPreKey {
  keyId: number;
  keyPair: KyberKeyPair;
  signature: Uint8Array;
}

/** A one-time EC prekey with its private half. */
export interface OneTimePreKey {
  keyId: number;
  keyPair: KeyPair;
}

/** Every key of a device, private halves included. */
export interface DeviceKeys {
  registrationId: number;
  identity: KeyPair;
  signedPreKey: SignedPreKey;
  kyberLastResortPreKey: KyberPreKey;
  preKeys: OneTimePreKey[];
  kyberPreKeys: KyberPreKey[];
}

/** How many one-time keys to make, and the first ids (defaults: 5 of each; ids as below). */
export interface DeviceKeysOptions {
  preKeys?: number;
  kyberPreKeys?: number;
  /** First one-time EC prekey id (default 1). */
  firstPreKeyId?: number;
  /** First one-time Kyber prekey id (default 1); the last-resort key takes the id after the last one-time key. */
  firstKyberPreKeyId?: number;
  /** Signed prekey id (default 1). */
  signedPreKeyId?: number;
  /** An existing identity to keep (a linked device shares its account's identity key); default a new one. */
  identity?: KeyPair;
}

/** A random registration id in 1..16380, as Signal clients pick them. */
export function randomRegistrationId(): number {
  return 1 + (crypto.getRandomValues(new Uint32Array(1))[0]! % 16380);
}

/** A signed EC prekey: a fresh pair whose 33-byte public key the identity signs. */
export function generateSignedPreKey(identity: KeyPair, keyId: number): SignedPreKey {
  const keyPair = generateKeyPair();
  return { keyId, keyPair, signature: xeddsaSign(identity.privateKey, keyPair.publicKey) };
}

/** A signed Kyber1024 prekey: a fresh pair whose 1569-byte public key the identity signs. */
export function generateKyberPreKey(identity: KeyPair, keyId: number): KyberPreKey {
  const keyPair = generateKyberKeyPair();
  return { keyId, keyPair, signature: xeddsaSign(identity.privateKey, keyPair.publicKey) };
}

/** `count` one-time EC prekeys with ids `firstId`, `firstId + 1`, …. */
export function generatePreKeys(firstId: number, count: number): OneTimePreKey[] {
  return Array.from({ length: count }, (_, i) => ({ keyId: firstId + i, keyPair: generateKeyPair() }));
}

/** `count` signed one-time Kyber prekeys with ids `firstId`, `firstId + 1`, …. */
export function generateKyberPreKeys(identity: KeyPair, firstId: number, count: number): KyberPreKey[] {
  return Array.from({ length: count }, (_, i) => generateKyberPreKey(identity, firstId + i));
}

/** The public registration body for a device's keys. */
export function deviceKeysBody(keys: DeviceKeys): DeviceKeysBody {
  const signed = (k: SignedPreKey | KyberPreKey) => ({ keyId: k.keyId, publicKey: toBase64(k.keyPair.publicKey), signature: toBase64(k.signature) });
  return {
    registrationId: keys.registrationId,
    identityKey: toBase64(keys.identity.publicKey),
    signedPreKey: signed(keys.signedPreKey),
    kyberLastResortPreKey: signed(keys.kyberLastResortPreKey),
    preKeys: keys.preKeys.map((k) => ({ keyId: k.keyId, publicKey: toBase64(k.keyPair.publicKey) })),
    kyberPreKeys: keys.kyberPreKeys.map(signed),
  };
}

/**
 * Generates a new device's keys: private material and the public body to register.
 * @example
 * const { keys, body } = generateDeviceKeys({ preKeys: 100, kyberPreKeys: 100 });
 * await api.register({ ...body });
 * const store = inMemoryStoreFor({ userId, deviceId }, keys);
 */
export function generateDeviceKeys(options: DeviceKeysOptions = {}): { keys: DeviceKeys; body: DeviceKeysBody } {
  const preKeyCount = options.preKeys ?? 5;
  const kyberCount = options.kyberPreKeys ?? 5;
  const firstKyber = options.firstKyberPreKeyId ?? 1;
  const identity = options.identity ?? generateKeyPair();
  const keys: DeviceKeys = {
    registrationId: randomRegistrationId(),
    identity,
    signedPreKey: generateSignedPreKey(identity, options.signedPreKeyId ?? 1),
    kyberLastResortPreKey: generateKyberPreKey(identity, firstKyber + kyberCount),
    preKeys: generatePreKeys(options.firstPreKeyId ?? 1, preKeyCount),
    kyberPreKeys: generateKyberPreKeys(identity, firstKyber, kyberCount),
  };
  return { keys, body: deviceKeysBody(keys) };
}

/** An {@link InMemoryProtocolStore} holding all of a device's private keys. */
export function inMemoryStoreFor(address: ProtocolAddress, keys: DeviceKeys): InMemoryProtocolStore {
  const store = new InMemoryProtocolStore({ address, identity: keys.identity, registrationId: keys.registrationId });
  store.storeSignedPreKey(keys.signedPreKey.keyId, keys.signedPreKey.keyPair);
  store.storeKyberPreKey(keys.kyberLastResortPreKey.keyId, keys.kyberLastResortPreKey.keyPair, true);
  for (const k of keys.kyberPreKeys) store.storeKyberPreKey(k.keyId, k.keyPair);
  for (const k of keys.preKeys) store.storePreKey(k.keyId, k.keyPair);
  return store;
}
