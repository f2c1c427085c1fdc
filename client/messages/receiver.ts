/**
 * Incoming envelopes, one at a time in inbox order: decrypt, store the plaintext (together with the
 * session state that decrypted it, in one atomic write), and only then acknowledge. Redeliveries are
 * recognised by (from, fromDevice, id) and skipped. Envelopes from a device whose identity key changed
 * are held in the quarantine (stored, acknowledged, not shown) until the app trusts the new key.
 */
import { fromBase64 } from "../../src/protocol/base64";
import type { Envelope, LiveReceipt, MessageEnvelope } from "../../src/protocol/frames";
import { DuplicateMessageError, UntrustedIdentityError, decrypt } from "../crypto/index";
import type { Core } from "../core";
import { isPending, untrustedOps } from "../identity/pending";
import { StagedProtocolStore } from "../sessions/staged-store";
import { historyKey, messageRefKey, numberKey } from "../store/keys";
import { put, type WriteOp } from "../store/types";
import { decodePlaintext, type Content } from "./content";
import { applyGroupEntry } from "../groups/receive";
import { StagedSenderKeyStore } from "../groups/staged-sender-keys";
import { processSenderKeyDistributionMessage } from "../crypto/sender-keys";
import { advanceStatus, findMessage, storeMessageOps } from "./history";
import type { MessageRecord } from "./types";
import { CIPHERTEXT_TYPES } from "../transport/wire";
import { envelopeOrder } from "../util/order-clock";

/**
 * A message that could not be decrypted or read; it is acknowledged and skipped (the sender is not told).
 * @example
 * relay.on("error", (e) => e instanceof UndecryptableMessageError && console.warn(e.from, e.id));
 */
export class UndecryptableMessageError extends Error {
  override name = "UndecryptableMessageError";
  constructor(
    readonly from: string,
    readonly fromDevice: number,
    readonly id: string,
    override readonly cause: unknown,
  ) {
    super(`message ${id} from ${from}.${fromDevice} could not be decrypted: ${(cause as Error)?.message ?? String(cause)}`);
  }
}

/**
 * Handles one envelope; call inside `core.lane`. Returns once its outcome is stored.
 * @example
 * await core.lane.run(async () => { for (const e of frame.envelopes) await receiveEnvelope(core, e); });
 */
export async function receiveEnvelope(core: Core, envelope: Envelope): Promise<void> {
  if (envelope.kind === "receipt") return applyReceipt(core, envelope);
  if (envelope.kind === "message") return receiveMessage(core, envelope);
  if (envelope.kind === "group_message" || envelope.kind === "group_event") await applyGroupEntry(core, envelope, { kind: "group" });
}

/**
 * Updates the status of this user's messages a receipt names (stored or pushed live); call inside `core.lane`.
 * @example
 * await core.lane.run(async () => { for (const r of frame.receipts) await applyReceipt(core, r); });
 */
export async function applyReceipt(core: Core, receipt: LiveReceipt): Promise<void> {
  const updated: MessageRecord[] = [];
  for (const ref of receipt.refs) {
    const message = await findMessage(core.store, core.userId, ref.device, ref.id);
    const next = message && advanceStatus(message, receipt.receipt);
    if (next) updated.push(next);
  }
  if (updated.length === 0) return;
  await core.store.write(updated.map((m) => put("messages", m.key, m)));
  for (const m of updated) core.events.emit("status", { id: m.id, conversation: m.conversation, status: m.status, message: m });
}

async function receiveMessage(core: Core, envelope: MessageEnvelope, extraOps: WriteOp[] = []): Promise<void> {
  const ref = messageRefKey(envelope.from, envelope.fromDevice, envelope.id);
  if ((await core.store.get("messageIndex", ref)) !== undefined) {
    if (extraOps.length) await core.store.write(extraOps);
    return;
  }
  if (await isPending(core.store, envelope.from, envelope.fromDevice)) {
    await core.store.write([put("quarantine", numberKey(envelope.seq), envelope)]);
    return;
  }
  const staged = new StagedProtocolStore(core.store, core.local, core.now);
  let record: MessageRecord | undefined;
  try {
    if (envelope.type !== CIPHERTEXT_TYPES.whisper && envelope.type !== CIPHERTEXT_TYPES.preKey) {
      throw new Error(`ciphertext type ${envelope.type} is not handled by this SDK version`);
    }
    const plaintext = await decrypt(staged, { userId: envelope.from, deviceId: envelope.fromDevice }, { type: envelope.type, body: fromBase64(envelope.body) });
    const decoded = decodePlaintext(plaintext);
    if (decoded.kind === "senderKey") {
      // A group member's sender key: kept (with the session state), never shown as a message.
      const sender = { userId: envelope.from, deviceId: envelope.fromDevice };
      await processSenderKeyDistributionMessage(sender, decoded.content.senderKey.message, new StagedSenderKeyStore(staged));
    } else record = toRecord(core, envelope, decoded.content);
  } catch (error) {
    if (error instanceof UntrustedIdentityError) {
      const { ops, addresses } = untrustedOps(staged, core.now());
      await core.store.write([...ops, ...extraOps, put("quarantine", numberKey(envelope.seq), envelope)]);
      for (const address of addresses) core.events.emit("identityChanged", address);
      return;
    }
    // A duplicate's key is gone: it was decrypted before. Anything else cannot be read; remember it so a
    // redelivery is not tried again.
    await core.store.write([...extraOps, put("messageIndex", ref, "")]);
    if (!(error instanceof DuplicateMessageError)) {
      core.events.emit("error", new UndecryptableMessageError(envelope.from, envelope.fromDevice, envelope.id, error));
    }
    return;
  }
  if (!record) {
    await core.store.write([...staged.writes(), put("messageIndex", ref, ""), ...extraOps]);
    return;
  }
  await core.store.write([...staged.writes(), ...storeMessageOps(record), ...extraOps]);
  core.events.emit("message", record);
}

function toRecord(core: Core, envelope: MessageEnvelope, content: Content): MessageRecord {
  const ref = messageRefKey(envelope.from, envelope.fromDevice, envelope.id);
  const own = envelope.from === core.userId;
  const to = own ? (content.to ?? core.userId) : core.userId;
  const conversation = own ? to : envelope.from;
  return {
    id: envelope.id,
    conversation,
    direction: own ? "outgoing" : "incoming",
    from: envelope.from,
    fromDevice: envelope.fromDevice,
    to,
    body: content.body,
    sentAt: content.sentAt,
    serverTs: envelope.ts,
    status: own ? "sent" : "delivered",
    key: historyKey(conversation, envelopeOrder(envelope.ts, envelope.seq), ref),
  };
}

/**
 * Retries the held envelopes whose sender is no longer pending (after `trustIdentity`), in arrival order.
 * Call inside `core.lane`.
 * @example
 * await core.lane.run(() => releaseQuarantine(core));
 */
export async function releaseQuarantine(core: Core): Promise<void> {
  for (const { key, value } of await core.store.list("quarantine")) {
    if (value.kind !== "message" || (await isPending(core.store, value.from, value.fromDevice))) continue;
    await receiveMessage(core, value, [put("quarantine", key, undefined)]);
  }
}
