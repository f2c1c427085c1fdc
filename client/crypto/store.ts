/**
 * What the session layer asks of the app's storage ({@link ProtocolStore}), and an in-memory
 * implementation for tests, bots and as a model for persistent stores. Every method is async so a
 * store can sit on IndexedDB, SQLite or a Durable Object. Sessions are opaque bytes
 * ({@link SessionRecord.serialize}); keys are raw bytes in libsignal's serializations.
 */
import { bytesEqual, copyBytes } from "./bytes";
import { addressKey, type ProtocolAddress } from "./address";
import type { KeyPair } from "./curve";
import type { KyberKeyPair } from "./kem";
import { InvalidMessageError } from "./errors";

/** Which way a message goes when the store is asked whether it trusts an identity. */
export type Direction = "sending" | "receiving";

/** The storage a device's 1:1 sessions need. */
export interface ProtocolStore {
  /** This device's identity key pair (33-byte public key, 32-byte private key). */
  getIdentityKeyPair(): Promise<KeyPair>;
  /** This device's 14-bit registration id. */
  getLocalRegistrationId(): Promise<number>;
  /** This device's own address (bound into PreKeySignalMessages and checked on incoming ones). */
  getLocalAddress(): Promise<ProtocolAddress>;

  /** The serialized session record with `address`, if any. */
  loadSession(address: ProtocolAddress): Promise<Uint8Array | undefined>;
  /** Stores the serialized session record with `address` (replacing any). */
  storeSession(address: ProtocolAddress, record: Uint8Array): Promise<void>;

  /** The identity key last saved for `address`'s user, if any. */
  getIdentity(address: ProtocolAddress): Promise<Uint8Array | undefined>;
  /** Saves `identityKey` for `address`; returns true when it replaced a different key. */
  saveIdentity(address: ProtocolAddress, identityKey: Uint8Array): Promise<boolean>;
  /** Whether `identityKey` may be used with `address` in this direction (the app's safety-number policy). */
  isTrustedIdentity(address: ProtocolAddress, identityKey: Uint8Array, direction: Direction): Promise<boolean>;

  /** A one-time EC prekey pair by id, if still held. */
  loadPreKey(id: number): Promise<KeyPair | undefined>;
  /** Deletes a one-time EC prekey once a session used it. */
  removePreKey(id: number): Promise<void>;
  /** A signed EC prekey pair by id, if held. */
  loadSignedPreKey(id: number): Promise<KeyPair | undefined>;
  /** A Kyber prekey pair (one-time or last-resort) by id, if held. */
  loadKyberPreKey(id: number): Promise<KyberKeyPair | undefined>;
  /**
   * Called once a PreKeySignalMessage using Kyber prekey `id` decrypted: delete a one-time key; for a
   * last-resort key, throw if this (id, signed prekey id, base key) was seen before (a replayed handshake).
   */
  markKyberPreKeyUsed(id: number, signedPreKeyId: number, baseKey: Uint8Array): Promise<void>;
}

/** Options of {@link InMemoryProtocolStore}. */
export interface InMemoryProtocolStoreOptions {
  address: ProtocolAddress;
  identity: KeyPair;
  registrationId: number;
}

/**
 * A {@link ProtocolStore} in memory. Identities are trusted on first use (as libsignal's reference
 * store does, both directions): a changed key is refused until the app approves it with
 * {@link saveIdentity}. Kyber keys stored as last-resort survive use; one-time ones are deleted.
 */
export class InMemoryProtocolStore implements ProtocolStore {
  readonly address: ProtocolAddress;
  readonly identity: KeyPair;
  readonly registrationId: number;
  readonly sessions = new Map<string, Uint8Array>();
  readonly identities = new Map<string, Uint8Array>();
  readonly preKeys = new Map<number, KeyPair>();
  readonly signedPreKeys = new Map<number, KeyPair>();
  readonly kyberPreKeys = new Map<number, { keyPair: KyberKeyPair; lastResort: boolean }>();
  private readonly lastResortUses = new Set<string>();

  constructor(options: InMemoryProtocolStoreOptions) {
    this.address = { ...options.address };
    this.identity = options.identity;
    this.registrationId = options.registrationId;
  }

  async getIdentityKeyPair() {
    return this.identity;
  }
  async getLocalRegistrationId() {
    return this.registrationId;
  }
  async getLocalAddress() {
    return { ...this.address };
  }

  async loadSession(address: ProtocolAddress) {
    const record = this.sessions.get(addressKey(address));
    return record && copyBytes(record);
  }
  async storeSession(address: ProtocolAddress, record: Uint8Array) {
    this.sessions.set(addressKey(address), copyBytes(record));
  }

  /** Identities are kept per address, as libsignal's reference store keeps them. */
  async getIdentity(address: ProtocolAddress) {
    return this.identities.get(addressKey(address));
  }
  async saveIdentity(address: ProtocolAddress, identityKey: Uint8Array) {
    const known = this.identities.get(addressKey(address));
    this.identities.set(addressKey(address), copyBytes(identityKey));
    return known !== undefined && !bytesEqual(known, identityKey);
  }
  async isTrustedIdentity(address: ProtocolAddress, identityKey: Uint8Array, _direction: Direction) {
    const known = this.identities.get(addressKey(address));
    return known === undefined || bytesEqual(known, identityKey);
  }

  /** Adds a one-time EC prekey. */
  storePreKey(id: number, keyPair: KeyPair): void {
    this.preKeys.set(id, keyPair);
  }
  async loadPreKey(id: number) {
    return this.preKeys.get(id);
  }
  async removePreKey(id: number) {
    this.preKeys.delete(id);
  }

  /** Adds a signed EC prekey. */
  storeSignedPreKey(id: number, keyPair: KeyPair): void {
    this.signedPreKeys.set(id, keyPair);
  }
  async loadSignedPreKey(id: number) {
    return this.signedPreKeys.get(id);
  }

  /** Adds a Kyber prekey; `lastResort` keys are kept after use. */
  storeKyberPreKey(id: number, keyPair: KyberKeyPair, lastResort = false): void {
    this.kyberPreKeys.set(id, { keyPair, lastResort });
  }
  async loadKyberPreKey(id: number) {
    return this.kyberPreKeys.get(id)?.keyPair;
  }
  async markKyberPreKeyUsed(id: number, signedPreKeyId: number, baseKey: Uint8Array) {
    const entry = this.kyberPreKeys.get(id);
    if (!entry) return;
    if (!entry.lastResort) {
      this.kyberPreKeys.delete(id);
      return;
    }
    const use = `${id}:${signedPreKeyId}:${Array.from(baseKey).join(",")}`;
    if (this.lastResortUses.has(use)) throw new InvalidMessageError("reused base key with a last-resort Kyber prekey");
    this.lastResortUses.add(use);
  }
}
