/** This device's key material as store records: written once at registration, extended by maintenance. */
import type { DeviceKeys, KyberPreKey, OneTimePreKey, SignedPreKey } from "../crypto/index";
import { META, numberKey } from "../store/keys";
import { put, type KeyStateRecord, type WriteOp } from "../store/types";

/**
 * The store key of a prekey id.
 * @example
 * await store.get("preKeys", preKeyId(42));
 */
export function preKeyId(id: number): string {
  return numberKey(id, 8);
}

/**
 * Ops storing one-time EC prekeys.
 * @example
 * await store.write(preKeyOps(generatePreKeys(101, 100), Date.now()));
 */
export function preKeyOps(keys: OneTimePreKey[], now: number): WriteOp[] {
  return keys.map((k) => put("preKeys", preKeyId(k.keyId), { keyPair: k.keyPair, createdAt: now }));
}

/**
 * Ops storing Kyber prekeys (one-time unless `lastResort`).
 * @example
 * await store.write(kyberPreKeyOps(keys, false, Date.now()));
 */
export function kyberPreKeyOps(keys: KyberPreKey[], lastResort: boolean, now: number): WriteOp[] {
  return keys.map((k) => put("kyberPreKeys", preKeyId(k.keyId), { keyPair: k.keyPair, signature: k.signature, lastResort, createdAt: now }));
}

/**
 * Op storing a signed EC prekey.
 * @example
 * await store.write([signedPreKeyOp(generateSignedPreKey(identity, 2), Date.now())]);
 */
export function signedPreKeyOp(key: SignedPreKey, now: number): WriteOp {
  return put("signedPreKeys", preKeyId(key.keyId), { keyPair: key.keyPair, signature: key.signature, createdAt: now });
}

/**
 * Every op that stores a newly generated device's keys (from `generateDeviceKeys`), identity included.
 * @example
 * const { keys, body } = generateDeviceKeys({ preKeys: 100, kyberPreKeys: 100 });
 * await store.write([...deviceKeyOps(keys, Date.now()), put("meta", META.account, account)]);
 */
export function deviceKeyOps(keys: DeviceKeys, now: number): WriteOp[] {
  const lastKyber = Math.max(keys.kyberLastResortPreKey.keyId, ...keys.kyberPreKeys.map((k) => k.keyId));
  const lastPreKey = Math.max(0, ...keys.preKeys.map((k) => k.keyId));
  const state: KeyStateRecord = {
    nextPreKeyId: lastPreKey + 1,
    nextKyberPreKeyId: lastKyber + 1,
    nextSignedPreKeyId: keys.signedPreKey.keyId + 1,
    signedPreKeyId: keys.signedPreKey.keyId,
    kyberLastResortId: keys.kyberLastResortPreKey.keyId,
    rotatedAt: now,
  };
  return [
    put("meta", META.identity, { identity: keys.identity, registrationId: keys.registrationId }),
    put("meta", META.keyState, state),
    signedPreKeyOp(keys.signedPreKey, now),
    ...kyberPreKeyOps([keys.kyberLastResortPreKey], true, now),
    ...kyberPreKeyOps(keys.kyberPreKeys, false, now),
    ...preKeyOps(keys.preKeys, now),
  ];
}
