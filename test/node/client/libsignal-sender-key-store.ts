/**
 * Test support: libsignal's abstract SenderKeyStore in memory (records kept serialized, like a real store), plus
 * address conversion from Relay's { userId, deviceId }. Signal's library is the test oracle only: Node, never bundled.
 */
import { ProtocolAddress, SenderKeyRecord, SenderKeyStore, type Uuid } from "@signalapp/libsignal-client";
import type { SenderAddress } from "../../../client/crypto/sender-keys";

/** libsignal's ProtocolAddress for a Relay sender address. */
export const protocolAddress = (a: SenderAddress) => ProtocolAddress.new(a.userId, a.deviceId);

/** libsignal SenderKeyStore in memory, keyed by address and distribution id. */
export class LibsignalSenderKeyStore extends SenderKeyStore {
  readonly records = new Map<string, Uint8Array<ArrayBuffer>>();

  static key(sender: ProtocolAddress, distributionId: Uuid): string {
    return `${sender.toString()}::${distributionId.toLowerCase()}`;
  }

  async saveSenderKey(sender: ProtocolAddress, distributionId: Uuid, record: SenderKeyRecord): Promise<void> {
    this.records.set(LibsignalSenderKeyStore.key(sender, distributionId), record.serialize());
  }

  async getSenderKey(sender: ProtocolAddress, distributionId: Uuid): Promise<SenderKeyRecord | null> {
    const bytes = this.records.get(LibsignalSenderKeyStore.key(sender, distributionId));
    return bytes ? SenderKeyRecord.deserialize(bytes) : null;
  }

  /** The serialized record, for comparing with ours. */
  recordBytes(sender: SenderAddress, distributionId: string): Uint8Array<ArrayBuffer> | undefined {
    return this.records.get(LibsignalSenderKeyStore.key(protocolAddress(sender), distributionId));
  }

  /** Puts a serialized record (e.g. one of ours) in place. */
  putRecordBytes(sender: SenderAddress, distributionId: string, bytes: Uint8Array): void {
    this.records.set(LibsignalSenderKeyStore.key(protocolAddress(sender), distributionId), Uint8Array.from(bytes));
  }
}
