/**
 * Relay's Signal-protocol core for 1:1 sessions, wire-compatible with libsignal 0.103: PQXDH with
 * Kyber1024, the Double Ratchet with SPQR message keys (symmetric chain only), SignalMessage and
 * PreKeySignalMessage. Runs in browsers, Workers and Node (only @noble/*, @bufbuild/protobuf, WebCrypto).
 *
 * @example
 * import { generateDeviceKeys, inMemoryStoreFor, processPreKeyBundle, encrypt, decrypt } from "./client/crypto";
 * const alice = inMemoryStoreFor({ userId: aliceId, deviceId: 1 }, generateDeviceKeys().keys);
 * await processPreKeyBundle(alice, bob, bobBundle);           // from GET /v1/keys/:userId
 * const message = await encrypt(alice, bob, new TextEncoder().encode("hi"));   // { type: 3, body }
 * const plaintext = await decrypt(bobStore, aliceAddress, message);
 */
export { type ProtocolAddress, addressKey, MAX_DEVICE_ID } from "./address";
export { type PreKeyBundle, assertBundle, bundleFromDeviceBundle } from "./bundle";
export type { KeyPair } from "./curve";
export {
  type DeviceKeys,
  type DeviceKeysBody,
  type DeviceKeysOptions,
  type KyberPreKey,
  type OneTimePreKey,
  type SignedPreKey,
  deviceKeysBody,
  generateDeviceKeys,
  generateKyberPreKey,
  generateKyberPreKeys,
  generatePreKeys,
  generateSignedPreKey,
  inMemoryStoreFor,
  randomRegistrationId,
} from "./device-keys";
export {
  DuplicateMessageError,
  InvalidKeyError,
  InvalidMessageError,
  InvalidPreKeyIdError,
  InvalidSessionError,
  InvalidSignatureError,
  NoSessionError,
  ProtocolError,
  type ProtocolErrorCode,
  UntrustedIdentityError,
} from "./errors";
export { type KyberKeyPair, generateKyberKeyPair, kyberDecapsulate, kyberEncapsulate } from "./kem";
export * as limits from "./limits";
export { type CiphertextMessage, PREKEY_SIGNAL_MESSAGE_TYPE, SIGNAL_MESSAGE_TYPE } from "./messages";
export { SessionRecord } from "./session-record";
export { type SessionOptions, decrypt, encrypt, hasSession, processPreKeyBundle } from "./session";
export { type Direction, type ProtocolStore, InMemoryProtocolStore, type InMemoryProtocolStoreOptions } from "./store";
