/** The sender-key layer's storage (`client/crypto/sender-keys.ts`) over a {@link RelayStore}: one record per (sender device, distribution id). */
import { SenderKeyRecord, senderKeyName, type SenderAddress, type SenderKeyStore } from "../crypto/sender-keys";
import { put, type RelayStore } from "./types";

/**
 * Keeps serialized sender-key records in the `senderKeys` table, so group sessions survive restarts with
 * everything else the device stores.
 * @example
 * const senderKeys = new RelaySenderKeyStore(store);
 * const distribution = await createSenderKeyDistributionMessage(me, distributionId, senderKeys);
 */
export class RelaySenderKeyStore implements SenderKeyStore {
  constructor(private readonly store: RelayStore) {}

  async loadSenderKey(sender: SenderAddress, distributionId: string): Promise<SenderKeyRecord | null> {
    const bytes = await this.store.get("senderKeys", senderKeyName(sender, distributionId));
    return bytes ? SenderKeyRecord.deserialize(bytes) : null;
  }

  async storeSenderKey(sender: SenderAddress, distributionId: string, record: SenderKeyRecord): Promise<void> {
    await this.store.write([put("senderKeys", senderKeyName(sender, distributionId), record.serialize())]);
  }
}
