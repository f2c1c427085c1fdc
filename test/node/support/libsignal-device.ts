/**
 * A device registration body built with Signal's own library only (the test oracle; Node only, never bundled).
 * Same shape and key ids as `test/support/device-keys.ts`, which builds it with Relay's keys.ts.
 */
import {
  KEMKeyPair,
  KyberPreKeyRecord,
  PreKeyRecord,
  PrivateKey,
  SignedPreKeyRecord,
} from "@signalapp/libsignal-client";
import { toBase64 } from "../../../src/protocol/base64";
import {
  DEFAULT_KYBER_PRE_KEYS,
  DEFAULT_PRE_KEYS,
  fixtureKeyIds,
  randomRegistrationId,
  type DeviceKeysBody,
  type DeviceKeysOptions,
} from "../../support/device-keys";

/** libsignal records holding the private halves, ready for libsignal's prekey stores. */
export interface LibsignalDeviceRecords {
  signedPreKey: SignedPreKeyRecord;
  preKeys: PreKeyRecord[];
  kyberPreKeys: KyberPreKeyRecord[];
  kyberLastResortPreKey: KyberPreKeyRecord;
}

/** Builds a valid device registration body with libsignal: identity, signed prekey, Kyber keys and one-time prekeys. */
export function libsignalDeviceKeys(opts: DeviceKeysOptions = {}): {
  registrationId: number;
  identity: PrivateKey;
  keys: DeviceKeysBody;
  records: LibsignalDeviceRecords;
} {
  const ids = fixtureKeyIds(opts.preKeys ?? DEFAULT_PRE_KEYS, opts.kyberPreKeys ?? DEFAULT_KYBER_PRE_KEYS);
  const identity = PrivateKey.generate();
  const now = Date.now();
  const kyber = (keyId: number) => {
    const pair = KEMKeyPair.generate();
    return KyberPreKeyRecord.new(keyId, now, pair, identity.sign(pair.getPublicKey().serialize()));
  };
  const signedPreKeyPrivate = PrivateKey.generate();
  const signedPreKeyPublic = signedPreKeyPrivate.getPublicKey();
  const records: LibsignalDeviceRecords = {
    signedPreKey: SignedPreKeyRecord.new(
      ids.signedPreKey,
      now,
      signedPreKeyPublic,
      signedPreKeyPrivate,
      identity.sign(signedPreKeyPublic.serialize()),
    ),
    preKeys: ids.preKeys.map((keyId) => {
      const key = PrivateKey.generate();
      return PreKeyRecord.new(keyId, key.getPublicKey(), key);
    }),
    kyberPreKeys: ids.kyberPreKeys.map(kyber),
    kyberLastResortPreKey: kyber(ids.kyberLastResortPreKey),
  };
  const signed = (record: SignedPreKeyRecord | KyberPreKeyRecord) => ({
    keyId: record.id(),
    publicKey: toBase64(record.publicKey().serialize()),
    signature: toBase64(record.signature()),
  });
  const registrationId = randomRegistrationId();
  const keys: DeviceKeysBody = {
    registrationId,
    identityKey: toBase64(identity.getPublicKey().serialize()),
    signedPreKey: signed(records.signedPreKey),
    kyberLastResortPreKey: signed(records.kyberLastResortPreKey),
    preKeys: records.preKeys.map((r) => ({ keyId: r.id(), publicKey: toBase64(r.publicKey().serialize()) })),
    kyberPreKeys: records.kyberPreKeys.map(signed),
  };
  return { registrationId, identity, keys, records };
}
