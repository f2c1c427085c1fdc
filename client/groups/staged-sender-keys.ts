/** The sender-key layer's store over a {@link StagedProtocolStore}: its writes commit with everything else of one operation. */
import { SenderKeyRecord, senderKeyName, type SenderAddress, type SenderKeyStore } from "../crypto/sender-keys";
import type { StagedProtocolStore } from "../sessions/staged-store";

/**
 * Reads sender-key records through `staged` and stages every write there, so that a decrypted group message is
 * stored in the same atomic batch as the advanced chain (and an encrypted one with its outbox frame).
 * @example
 * const staged = new StagedProtocolStore(core.store, core.local);
 * const plaintext = await groupDecrypt(sender, new StagedSenderKeyStore(staged), body);
 * await core.store.write([...staged.writes(), put("groupHistory", key, record)]);
 */
export class StagedSenderKeyStore implements SenderKeyStore {
  constructor(private readonly staged: StagedProtocolStore) {}

  async loadSenderKey(sender: SenderAddress, distributionId: string): Promise<SenderKeyRecord | null> {
    const bytes = await this.staged.read("senderKeys", senderKeyName(sender, distributionId));
    return bytes ? SenderKeyRecord.deserialize(bytes) : null;
  }

  async storeSenderKey(sender: SenderAddress, distributionId: string, record: SenderKeyRecord): Promise<void> {
    this.staged.stage("senderKeys", senderKeyName(sender, distributionId), record.serialize());
  }
}
