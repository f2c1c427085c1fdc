/** Where sender-key records live: one per (sender address, distribution id), as in libsignal's `SenderKeyStore`. */
import { SenderKeyRecord } from "./sender-keys-record";

/** A device: the user's id and the device number (libsignal's `ProtocolAddress` name and device id). */
export interface SenderAddress {
  userId: string;
  deviceId: number;
}

/**
 * Persistence for sender-key records, keyed by (sender address, distribution id). The group functions load a record,
 * work on it and store it back only when they succeed. Loads must not hand out an object that a later store call
 * or another caller mutates in place (a persistent store returns a fresh `SenderKeyRecord.deserialize(...)`).
 * Callers must not run two operations on the same (sender, distribution id) at once.
 */
export interface SenderKeyStore {
  /** The record for this sender and distribution, or null if there is none. */
  loadSenderKey(sender: SenderAddress, distributionId: string): Promise<SenderKeyRecord | null>;
  /** Saves (replaces) the record for this sender and distribution. */
  storeSenderKey(sender: SenderAddress, distributionId: string, record: SenderKeyRecord): Promise<void>;
}

/** The map key of an address and distribution id (distribution ids compared case-insensitively, as UUIDs). */
export function senderKeyName(sender: SenderAddress, distributionId: string): string {
  return `${sender.userId}.${sender.deviceId}::${distributionId.toLowerCase()}`;
}

/**
 * A {@link SenderKeyStore} in memory. It keeps each record serialized, so every load is a fresh copy and every
 * store a real round trip through the storage format; `entries()` exposes those bytes for persisting.
 */
export class InMemorySenderKeyStore implements SenderKeyStore {
  private readonly records = new Map<string, Uint8Array>();

  /** Loads a fresh copy of the record, or null. */
  async loadSenderKey(sender: SenderAddress, distributionId: string): Promise<SenderKeyRecord | null> {
    const bytes = this.records.get(senderKeyName(sender, distributionId));
    return bytes ? SenderKeyRecord.deserialize(bytes) : null;
  }

  /** Stores the record's serialization. */
  async storeSenderKey(sender: SenderAddress, distributionId: string, record: SenderKeyRecord): Promise<void> {
    this.records.set(senderKeyName(sender, distributionId), record.serialize());
  }

  /** Every stored record as (name, serialized record) pairs; names come from {@link senderKeyName}. */
  entries(): IterableIterator<[string, Uint8Array]> {
    return this.records.entries();
  }
}
