/**
 * The crypto layer's {@link ProtocolStore} over a {@link RelayStore}, with every write staged in memory:
 * an encryption or decryption runs against it, and the caller then commits its writes together with
 * whatever belongs to them (the decrypted message, the outbox frame) in ONE atomic store batch. A crash
 * before the commit leaves the session exactly as it was, so the redelivered envelope decrypts again;
 * a crash after it leaves both. Reads see staged writes first.
 *
 * Identity policy: trust on first use per device; a different key for a known device is not trusted
 * until the app approves it (`trustIdentity`): it is recorded in {@link untrusted} for the caller to surface.
 */
import { InvalidMessageError, type Direction, type KeyPair, type KyberKeyPair, type ProtocolAddress, type ProtocolStore } from "../crypto/index";
import { bytesToHex } from "@noble/hashes/utils.js";
import { addressKey, numberKey } from "../store/keys";
import { put, type RelayStore, type TableName, type Tables, type WriteOp } from "../store/types";

/** This device's identity, loaded once. */
export interface LocalIdentity {
  address: ProtocolAddress;
  identity: KeyPair;
  registrationId: number;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/**
 * @example
 * const staged = new StagedProtocolStore(store, local);
 * const plaintext = await decrypt(staged, from, message);
 * await store.write([...staged.writes(), put("messages", key, record)]);
 */
export class StagedProtocolStore implements ProtocolStore {
  private readonly staged = new Map<string, WriteOp>();
  /** Changed identities this operation met and refused, by address. */
  readonly untrusted: { address: ProtocolAddress; key: Uint8Array }[] = [];

  constructor(
    private readonly store: RelayStore,
    private readonly local: LocalIdentity,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * The staged writes, in the order they were made (last write per key wins).
   * @example
   * await store.write([...staged.writes(), ...more]);
   */
  writes(): WriteOp[] {
    return [...this.staged.values()];
  }

  /**
   * Stages a put (or a delete with `undefined`).
   * @example
   * staged.stage("sessions", addressKey(bobId, 2), undefined);
   */
  stage<T extends TableName>(table: T, key: string, value: Tables[T] | undefined): void {
    const id = `${table}\u0000${key}`;
    this.staged.delete(id);
    this.staged.set(id, put(table, key, value));
  }

  /**
   * Reads through the staged writes.
   * @example
   * const identity = await staged.read("identities", addressKey(bobId, 1));
   */
  async read<T extends TableName>(table: T, key: string): Promise<Tables[T] | undefined> {
    const op = this.staged.get(`${table}\u0000${key}`);
    if (op) return op.value as Tables[T] | undefined;
    return this.store.get(table, key);
  }

  // The ProtocolStore methods below are documented on the interface (client/crypto/store.ts).

  async getIdentityKeyPair(): Promise<KeyPair> {
    return this.local.identity;
  }
  async getLocalRegistrationId(): Promise<number> {
    return this.local.registrationId;
  }
  async getLocalAddress(): Promise<ProtocolAddress> {
    return { ...this.local.address };
  }

  async loadSession(address: ProtocolAddress): Promise<Uint8Array | undefined> {
    return this.read("sessions", addressKey(address.userId, address.deviceId));
  }
  async storeSession(address: ProtocolAddress, record: Uint8Array): Promise<void> {
    this.stage("sessions", addressKey(address.userId, address.deviceId), Uint8Array.from(record));
  }

  async getIdentity(address: ProtocolAddress): Promise<Uint8Array | undefined> {
    return (await this.read("identities", addressKey(address.userId, address.deviceId)))?.key;
  }
  async saveIdentity(address: ProtocolAddress, identityKey: Uint8Array): Promise<boolean> {
    const key = addressKey(address.userId, address.deviceId);
    const known = await this.read("identities", key);
    if (known && sameBytes(known.key, identityKey)) return false;
    this.stage("identities", key, { key: Uint8Array.from(identityKey), trustedAt: this.now() });
    return known !== undefined;
  }
  async isTrustedIdentity(address: ProtocolAddress, identityKey: Uint8Array, _direction: Direction): Promise<boolean> {
    const known = await this.read("identities", addressKey(address.userId, address.deviceId));
    if (!known || sameBytes(known.key, identityKey)) return true;
    this.untrusted.push({ address: { ...address }, key: Uint8Array.from(identityKey) });
    return false;
  }

  async loadPreKey(id: number): Promise<KeyPair | undefined> {
    return (await this.read("preKeys", numberKey(id, 8)))?.keyPair;
  }
  async removePreKey(id: number): Promise<void> {
    this.stage("preKeys", numberKey(id, 8), undefined);
  }
  async loadSignedPreKey(id: number): Promise<KeyPair | undefined> {
    return (await this.read("signedPreKeys", numberKey(id, 8)))?.keyPair;
  }
  async loadKyberPreKey(id: number): Promise<KyberKeyPair | undefined> {
    return (await this.read("kyberPreKeys", numberKey(id, 8)))?.keyPair;
  }
  async markKyberPreKeyUsed(id: number, signedPreKeyId: number, baseKey: Uint8Array): Promise<void> {
    const record = await this.read("kyberPreKeys", numberKey(id, 8));
    if (!record) return;
    if (!record.lastResort) {
      this.stage("kyberPreKeys", numberKey(id, 8), undefined);
      return;
    }
    const use = `${numberKey(id, 8)}.${signedPreKeyId}.${bytesToHex(baseKey)}`;
    if ((await this.read("kyberUses", use)) !== undefined) throw new InvalidMessageError("reused base key with a last-resort Kyber prekey");
    this.stage("kyberUses", use, this.now());
  }
}
