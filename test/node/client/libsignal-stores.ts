/**
 * Test support for the 1:1 session tests: libsignal's abstract protocol stores in memory (records kept
 * serialized, like a real store), a libsignal device wrapped behind the same { type, body } messages our
 * SDK uses, and a Relay device built through the SDK's public API. Signal's library is the test oracle
 * only: Node, never bundled, never imported from client/ or src/.
 */
import {
  CiphertextMessageType,
  Direction,
  IdentityChange,
  IdentityKeyStore,
  KEMKeyPair,
  KEMPublicKey,
  KyberPreKeyRecord,
  KyberPreKeyStore,
  PreKeyBundle as LibPreKeyBundle,
  PreKeyRecord,
  PreKeySignalMessage,
  PreKeyStore,
  PrivateKey,
  ProtocolAddress as LibAddress,
  PublicKey,
  SessionRecord,
  SessionStore,
  SignalMessage,
  SignedPreKeyRecord,
  SignedPreKeyStore,
  processPreKeyBundle as libProcessPreKeyBundle,
  signalDecrypt,
  signalDecryptPreKey,
  signalEncrypt,
} from "@signalapp/libsignal-client";
import {
  generateDeviceKeys,
  inMemoryStoreFor,
  type CiphertextMessage,
  type DeviceKeys,
  type InMemoryProtocolStore,
  type PreKeyBundle,
  type ProtocolAddress,
} from "../../../client/crypto";

/** A copy backed by a plain ArrayBuffer, as libsignal's typings want. */
export const ab = (b: Uint8Array): Uint8Array<ArrayBuffer> => Uint8Array.from(b);
export const utf8 = (text: string) => new TextEncoder().encode(text);
export const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

/** libsignal's ProtocolAddress for a Relay address. */
export const libAddress = (a: ProtocolAddress) => LibAddress.new(a.userId, a.deviceId);

/** A fresh Relay-style address: a UUID user id (a service id to libsignal, so `addresses` is bound) and a device. */
export const newAddress = (deviceId = 1): ProtocolAddress => ({ userId: crypto.randomUUID(), deviceId });

export class LibSessions extends SessionStore {
  readonly records = new Map<string, Uint8Array<ArrayBuffer>>();
  async saveSession(address: LibAddress, record: SessionRecord) {
    this.records.set(address.toString(), record.serialize());
  }
  async getSession(address: LibAddress) {
    const bytes = this.records.get(address.toString());
    return bytes ? SessionRecord.deserialize(bytes) : null;
  }
  async getExistingSessions(addresses: LibAddress[]) {
    return addresses.map((a) => {
      const bytes = this.records.get(a.toString());
      if (!bytes) throw new Error(`no session for ${a.toString()}`);
      return SessionRecord.deserialize(bytes);
    });
  }
}

/** Trust on first use, both directions, like libsignal's own in-memory store. */
export class LibIdentities extends IdentityKeyStore {
  readonly known = new Map<string, PublicKey>();
  constructor(
    readonly key: PrivateKey,
    readonly registrationId: number,
  ) {
    super();
  }
  async getIdentityKey() {
    return this.key;
  }
  async getLocalRegistrationId() {
    return this.registrationId;
  }
  async saveIdentity(address: LibAddress, key: PublicKey) {
    const old = this.known.get(address.toString());
    this.known.set(address.toString(), key);
    return old && !old.equals(key) ? IdentityChange.ReplacedExisting : IdentityChange.NewOrUnchanged;
  }
  async isTrustedIdentity(address: LibAddress, key: PublicKey, _direction: Direction) {
    const old = this.known.get(address.toString());
    return !old || old.equals(key);
  }
  async getIdentity(address: LibAddress) {
    return this.known.get(address.toString()) ?? null;
  }
}

export class LibPreKeys extends PreKeyStore {
  readonly keys = new Map<number, PreKeyRecord>();
  async savePreKey(id: number, record: PreKeyRecord) {
    this.keys.set(id, record);
  }
  async getPreKey(id: number) {
    const record = this.keys.get(id);
    if (!record) throw new Error(`no prekey ${id}`);
    return record;
  }
  async removePreKey(id: number) {
    this.keys.delete(id);
  }
}

export class LibSignedPreKeys extends SignedPreKeyStore {
  readonly keys = new Map<number, SignedPreKeyRecord>();
  async saveSignedPreKey(id: number, record: SignedPreKeyRecord) {
    this.keys.set(id, record);
  }
  async getSignedPreKey(id: number) {
    const record = this.keys.get(id);
    if (!record) throw new Error(`no signed prekey ${id}`);
    return record;
  }
}

/** One-time Kyber keys are deleted on use; the last-resort one refuses a reused base key (libsignal's contract). */
export class LibKyberPreKeys extends KyberPreKeyStore {
  readonly keys = new Map<number, KyberPreKeyRecord>();
  readonly lastResort = new Set<number>();
  readonly used: number[] = [];
  private readonly seen = new Set<string>();
  async saveKyberPreKey(id: number, record: KyberPreKeyRecord) {
    this.keys.set(id, record);
  }
  async getKyberPreKey(id: number) {
    const record = this.keys.get(id);
    if (!record) throw new Error(`no Kyber prekey ${id}`);
    return record;
  }
  async markKyberPreKeyUsed(id: number, signedPreKeyId: number, baseKey: PublicKey) {
    this.used.push(id);
    if (!this.lastResort.has(id)) {
      this.keys.delete(id);
      return;
    }
    const use = `${id}:${signedPreKeyId}:${baseKey.serialize().join(",")}`;
    if (this.seen.has(use)) throw new Error("reused base key");
    this.seen.add(use);
  }
}

/** A device running libsignal: stores, keys, and our message shape in and out. */
export class LibsignalDevice {
  readonly identity = PrivateKey.generate();
  readonly registrationId = 1 + Math.floor(Math.random() * 16380);
  readonly sessions = new LibSessions();
  readonly identities = new LibIdentities(this.identity, this.registrationId);
  readonly preKeys = new LibPreKeys();
  readonly signedPreKeys = new LibSignedPreKeys();
  readonly kyberPreKeys = new LibKyberPreKeys();
  private nextPreKey = 1;
  private nextKyber = 1;
  readonly lib: LibAddress;

  constructor(
    readonly address: ProtocolAddress = newAddress(),
    options: { preKeys?: number; kyberPreKeys?: number } = {},
  ) {
    this.lib = libAddress(address);
    const now = Date.now();
    const signedPrivate = PrivateKey.generate();
    const signedPublic = signedPrivate.getPublicKey();
    this.signedPreKeys.keys.set(1, SignedPreKeyRecord.new(1, now, signedPublic, signedPrivate, this.identity.sign(signedPublic.serialize())));
    const kyber = (id: number) => {
      const pair = KEMKeyPair.generate();
      return KyberPreKeyRecord.new(id, now, pair, this.identity.sign(pair.getPublicKey().serialize()));
    };
    const oneTimeKyber = options.kyberPreKeys ?? 3;
    for (let id = 1; id <= oneTimeKyber; id++) this.kyberPreKeys.keys.set(id, kyber(id));
    this.kyberPreKeys.keys.set(oneTimeKyber + 1, kyber(oneTimeKyber + 1));
    this.kyberPreKeys.lastResort.add(oneTimeKyber + 1);
    for (let id = 1; id <= (options.preKeys ?? 3); id++) {
      const key = PrivateKey.generate();
      this.preKeys.keys.set(id, PreKeyRecord.new(id, key.getPublicKey(), key));
    }
  }

  get identityKey(): Uint8Array {
    return this.identity.getPublicKey().serialize();
  }

  /** The bundle a server would hand out: the next one-time keys when `oneTime`, else only the signed and last-resort keys. */
  bundle(oneTime: boolean): PreKeyBundle {
    const signed = this.signedPreKeys.keys.get(1)!;
    const kyberIds = [...this.kyberPreKeys.keys.keys()].filter((id) => !this.kyberPreKeys.lastResort.has(id) && id >= this.nextKyber);
    const kyberId = oneTime && kyberIds.length ? kyberIds[0]! : [...this.kyberPreKeys.lastResort][0]!;
    if (oneTime) this.nextKyber = kyberId + 1;
    const kyber = this.kyberPreKeys.keys.get(kyberId)!;
    const preKey = oneTime ? this.preKeys.keys.get(this.nextPreKey++) : undefined;
    return {
      registrationId: this.registrationId,
      deviceId: this.address.deviceId,
      identityKey: this.identityKey,
      signedPreKeyId: signed.id(),
      signedPreKey: signed.publicKey().serialize(),
      signedPreKeySignature: signed.signature(),
      kyberPreKeyId: kyberId,
      kyberPreKey: kyber.publicKey().serialize(),
      kyberPreKeySignature: kyber.signature(),
      ...(preKey ? { preKeyId: preKey.id(), preKey: preKey.publicKey().serialize() } : {}),
    };
  }

  /** libsignal's processPreKeyBundle on one of our bundles. */
  async processBundle(peer: ProtocolAddress, bundle: PreKeyBundle): Promise<void> {
    const lib = LibPreKeyBundle.new(
      bundle.registrationId,
      bundle.deviceId,
      bundle.preKeyId ?? null,
      bundle.preKey ? PublicKey.deserialize(ab(bundle.preKey)) : null,
      bundle.signedPreKeyId,
      PublicKey.deserialize(ab(bundle.signedPreKey)),
      ab(bundle.signedPreKeySignature),
      PublicKey.deserialize(ab(bundle.identityKey)),
      bundle.kyberPreKeyId,
      KEMPublicKey.deserialize(ab(bundle.kyberPreKey)),
      ab(bundle.kyberPreKeySignature),
    );
    await libProcessPreKeyBundle(lib, libAddress(peer), this.lib, this.sessions, this.identities);
  }

  async encrypt(peer: ProtocolAddress, plaintext: Uint8Array): Promise<CiphertextMessage> {
    const message = await signalEncrypt(ab(plaintext), libAddress(peer), this.lib, this.sessions, this.identities);
    const type = message.type();
    if (type !== CiphertextMessageType.Whisper && type !== CiphertextMessageType.PreKey) throw new Error(`unexpected type ${type}`);
    return { type, body: message.serialize() };
  }

  async decrypt(peer: ProtocolAddress, message: CiphertextMessage): Promise<Uint8Array> {
    if (message.type === CiphertextMessageType.PreKey) {
      return signalDecryptPreKey(
        PreKeySignalMessage.deserialize(ab(message.body)),
        libAddress(peer),
        this.lib,
        this.sessions,
        this.identities,
        this.preKeys,
        this.signedPreKeys,
        this.kyberPreKeys,
      );
    }
    return signalDecrypt(SignalMessage.deserialize(ab(message.body)), libAddress(peer), this.lib, this.sessions, this.identities);
  }
}

/** A device running our SDK, built only through its public API. */
export class RelayDevice {
  readonly keys: DeviceKeys;
  readonly store: InMemoryProtocolStore;
  private nextPreKey = 0;
  private nextKyber = 0;

  constructor(
    readonly address: ProtocolAddress = newAddress(),
    options: { preKeys?: number; kyberPreKeys?: number; keys?: DeviceKeys } = {},
  ) {
    this.keys = options.keys ?? generateDeviceKeys({ preKeys: options.preKeys ?? 3, kyberPreKeys: options.kyberPreKeys ?? 3 }).keys;
    this.store = inMemoryStoreFor(address, this.keys);
  }

  get identityKey(): Uint8Array {
    return this.keys.identity.publicKey;
  }

  /** The bundle a server would hand out: the next one-time keys when `oneTime` (while any are left). */
  bundle(oneTime: boolean): PreKeyBundle {
    const kyber = oneTime && this.nextKyber < this.keys.kyberPreKeys.length ? this.keys.kyberPreKeys[this.nextKyber++]! : this.keys.kyberLastResortPreKey;
    const preKey = oneTime ? this.keys.preKeys[this.nextPreKey++] : undefined;
    return {
      registrationId: this.keys.registrationId,
      deviceId: this.address.deviceId,
      identityKey: this.keys.identity.publicKey,
      signedPreKeyId: this.keys.signedPreKey.keyId,
      signedPreKey: this.keys.signedPreKey.keyPair.publicKey,
      signedPreKeySignature: this.keys.signedPreKey.signature,
      kyberPreKeyId: kyber.keyId,
      kyberPreKey: kyber.keyPair.publicKey,
      kyberPreKeySignature: kyber.signature,
      ...(preKey ? { preKeyId: preKey.keyId, preKey: preKey.keyPair.publicKey } : {}),
    };
  }
}
