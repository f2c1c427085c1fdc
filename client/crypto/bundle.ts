/**
 * A recipient device's prekey bundle (what a sender needs to start a session), its format checks,
 * and its construction from the server's `DeviceBundle` response (src/protocol/http.ts).
 */
import { fromBase64 } from "../../src/protocol/base64";
import type { DeviceBundle } from "../../src/protocol/http";
import { EC_PUBLIC_KEY_BYTES, KEY_TYPE_DJB, KEY_TYPE_KYBER1024, KYBER1024_PUBLIC_KEY_BYTES, SIGNATURE_BYTES } from "../../src/protocol/keys";
import { InvalidKeyError } from "./errors";

/** One device's prekey bundle, keys in libsignal's serializations. */
export interface PreKeyBundle {
  registrationId: number;
  deviceId: number;
  /** 33 bytes. */
  identityKey: Uint8Array;
  signedPreKeyId: number;
  /** 33 bytes. */
  signedPreKey: Uint8Array;
  /** 64-byte XEdDSA signature by the identity key over `signedPreKey`. */
  signedPreKeySignature: Uint8Array;
  kyberPreKeyId: number;
  /** 1569 bytes. */
  kyberPreKey: Uint8Array;
  /** 64-byte XEdDSA signature by the identity key over `kyberPreKey`. */
  kyberPreKeySignature: Uint8Array;
  /** A one-time EC prekey, when the server had one left (id and key together). */
  preKeyId?: number;
  preKey?: Uint8Array;
}

function check(ok: boolean, message: string): void {
  if (!ok) throw new InvalidKeyError(`bundle ${message}`);
}

const isId = (n: unknown) => Number.isInteger(n) && (n as number) >= 0 && (n as number) <= 0xffff_ffff;

/** Throws {@link InvalidKeyError} unless every key, signature and id of `bundle` is well-formed (signatures are checked later). */
export function assertBundle(bundle: PreKeyBundle): void {
  const key = (b: unknown, length: number, type: number) => b instanceof Uint8Array && b.length === length && b[0] === type;
  check(key(bundle.identityKey, EC_PUBLIC_KEY_BYTES, KEY_TYPE_DJB), "identity key must be 33 bytes starting with 0x05");
  check(key(bundle.signedPreKey, EC_PUBLIC_KEY_BYTES, KEY_TYPE_DJB), "signed prekey must be 33 bytes starting with 0x05");
  check(key(bundle.kyberPreKey, KYBER1024_PUBLIC_KEY_BYTES, KEY_TYPE_KYBER1024), "Kyber prekey must be 1569 bytes starting with 0x08");
  check(bundle.signedPreKeySignature instanceof Uint8Array && bundle.signedPreKeySignature.length === SIGNATURE_BYTES, "signed prekey signature must be 64 bytes");
  check(bundle.kyberPreKeySignature instanceof Uint8Array && bundle.kyberPreKeySignature.length === SIGNATURE_BYTES, "Kyber prekey signature must be 64 bytes");
  check(isId(bundle.registrationId) && isId(bundle.signedPreKeyId) && isId(bundle.kyberPreKeyId), "ids must be unsigned 32-bit integers");
  check((bundle.preKeyId === undefined) === (bundle.preKey === undefined), "one-time prekey needs both id and key");
  if (bundle.preKey !== undefined) {
    check(isId(bundle.preKeyId), "one-time prekey id must be an unsigned 32-bit integer");
    check(key(bundle.preKey, EC_PUBLIC_KEY_BYTES, KEY_TYPE_DJB), "one-time prekey must be 33 bytes starting with 0x05");
  }
}

/** Decodes one device of the server's `GET /v1/keys/…` answer into a {@link PreKeyBundle} (throws `TypeError` on bad base64). */
export function bundleFromDeviceBundle(device: DeviceBundle): PreKeyBundle {
  return {
    registrationId: device.registrationId,
    deviceId: device.deviceId,
    identityKey: fromBase64(device.identityKey),
    signedPreKeyId: device.signedPreKey.keyId,
    signedPreKey: fromBase64(device.signedPreKey.publicKey),
    signedPreKeySignature: fromBase64(device.signedPreKey.signature),
    kyberPreKeyId: device.kyberPreKey.keyId,
    kyberPreKey: fromBase64(device.kyberPreKey.publicKey),
    kyberPreKeySignature: fromBase64(device.kyberPreKey.signature),
    ...(device.preKey ? { preKeyId: device.preKey.keyId, preKey: fromBase64(device.preKey.publicKey) } : {}),
  };
}
