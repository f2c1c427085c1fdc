/**
 * Builds a `send` frame: the message encrypted once per device of the recipient and once per other
 * device of the sender (the `sync` copies, which also say who the message went to). Devices without a
 * session get one from their prekey bundle first.
 */
import { toBase64 } from "../../src/protocol/base64";
import type { OutgoingMessage, SendFrame } from "../../src/protocol/frames";
import { NoSessionError, encrypt } from "../crypto/index";
import type { Core } from "../core";
import { encodeContent } from "../messages/content";
import type { OutboxSend } from "../messages/types";
import { addressKey } from "../store/keys";
import { addBundles, sessionDevices, type KnownDevice } from "./devices";
import type { StagedProtocolStore } from "./staged-store";

/**
 * A changed identity stops the send until the app trusts it.
 * @example
 * try { await buildSendFrame(core, staged, item); } catch (e) { if (e instanceof IdentityBlockedError) hold(item, e.userId); }
 */
export class IdentityBlockedError extends Error {
  override name = "IdentityBlockedError";
  constructor(readonly userId: string) {
    super(`a changed identity key of ${userId} waits for trustIdentity`);
  }
}

async function encryptFor(core: Core, staged: StagedProtocolStore, userId: string, devices: KnownDevice[], plaintext: Uint8Array): Promise<OutgoingMessage[]> {
  const out: OutgoingMessage[] = [];
  for (const device of devices) {
    const address = { userId, deviceId: device.deviceId };
    let message;
    let registrationId = device.registrationId;
    try {
      message = await encrypt(staged, address, plaintext);
    } catch (error) {
      if (!(error instanceof NoSessionError)) throw error;
      // An unanswered session went stale: start over from a fresh bundle.
      staged.stage("sessions", addressKey(userId, device.deviceId), undefined);
      if ((await addBundles(staged, await core.api.bundles(userId, device.deviceId))).length) throw new IdentityBlockedError(userId);
      message = await encrypt(staged, address, plaintext);
      registrationId = (await sessionDevices(core.store, staged, userId)).find((d) => d.deviceId === device.deviceId)?.registrationId ?? registrationId;
    }
    out.push({ device: device.deviceId, registrationId, type: message.type, body: toBase64(message.body) });
  }
  return out;
}

/**
 * Encrypts `item` for every known device of its recipient and of this account (fetching every bundle of a
 * recipient we have no session with yet). Throws {@link IdentityBlockedError} when a changed identity is met.
 * @example
 * const staged = new StagedProtocolStore(core.store, core.local);
 * const frame = await buildSendFrame(core, staged, item);
 * await core.store.write([...staged.writes(), put("outbox", key, { ...item, frame })]);
 */
export async function buildSendFrame(core: Core, staged: StagedProtocolStore, item: OutboxSend): Promise<Required<SendFrame>> {
  const content = encodeContent({ body: item.body, sentAt: item.sentAt });
  const syncContent = encodeContent({ body: item.body, sentAt: item.sentAt, to: item.to });
  return buildPlaintextFrame(core, staged, item, content, syncContent);
}

/**
 * Like {@link buildSendFrame} for any plaintext: `content` for the recipient's devices, `syncContent` for this
 * account's other devices (for a note to self, `syncContent` goes to them as the message).
 * @example
 * const plaintext = encodeSenderKeyContent({ senderKey: { group, message }, sentAt: Date.now() });
 * const frame = await buildPlaintextFrame(core, staged, { id, to: bobId }, plaintext, plaintext);
 */
export async function buildPlaintextFrame(
  core: Core,
  staged: StagedProtocolStore,
  send: { id: string; to: string },
  content: Uint8Array,
  syncContent: Uint8Array,
): Promise<Required<SendFrame>> {
  const self = send.to === core.userId;
  let recipients = await sessionDevices(core.store, staged, send.to);
  if (!self && recipients.length === 0) {
    if ((await addBundles(staged, await core.api.bundles(send.to))).length) throw new IdentityBlockedError(send.to);
    recipients = await sessionDevices(core.store, staged, send.to);
  }
  const own = (await sessionDevices(core.store, staged, core.userId)).filter((d) => d.deviceId !== core.deviceId);
  if (self) {
    return { type: "send", id: send.id, to: send.to, messages: await encryptFor(core, staged, core.userId, own, syncContent), sync: [] };
  }
  return {
    type: "send",
    id: send.id,
    to: send.to,
    messages: await encryptFor(core, staged, send.to, recipients, content),
    sync: await encryptFor(core, staged, core.userId, own, syncContent),
  };
}
