/** Safety numbers between two accounts: libsignal's numeric fingerprint over each account's primary-device identity key. */
import type { Core } from "../core";
import { safetyNumber, userIdIdentifier } from "../crypto/fingerprint";
import { addBundles } from "../sessions/devices";
import { StagedProtocolStore } from "../sessions/staged-store";
import { addressKey } from "../store/keys";
import { untrustedOps } from "./pending";

const PRIMARY_DEVICE = 1;

/**
 * The trusted identity key of `userId`'s primary device, fetching (and starting a session from) its bundle
 * when none is known yet.
 * @example
 * const key = await primaryIdentityKey(core, bobId);
 */
export async function primaryIdentityKey(core: Core, userId: string): Promise<Uint8Array> {
  if (userId === core.userId && core.deviceId === PRIMARY_DEVICE) return core.local.identity.publicKey;
  const key = addressKey(userId, PRIMARY_DEVICE);
  let record = await core.store.get("identities", key);
  if (!record) {
    await core.lane.run(async () => {
      if (await core.store.get("identities", key)) return;
      const staged = new StagedProtocolStore(core.store, core.local, core.now);
      await addBundles(staged, await core.api.bundles(userId, PRIMARY_DEVICE));
      const { ops, addresses } = untrustedOps(staged, core.now());
      await core.store.write([...staged.writes(), ...ops]);
      for (const a of addresses) core.events.emit("identityChanged", a);
    });
    record = await core.store.get("identities", key);
  }
  if (!record) throw new Error(`no identity key known for ${userId}'s primary device`);
  return record.key;
}

/**
 * The 60 digits both users compare: the same on every device of both accounts.
 * @example
 * const digits = await safetyNumberWith(core, bobId);
 */
export async function safetyNumberWith(core: Core, userId: string): Promise<string> {
  return safetyNumber({
    localIdentifier: userIdIdentifier(core.userId),
    localKey: await primaryIdentityKey(core, core.userId),
    remoteIdentifier: userIdIdentifier(userId),
    remoteKey: await primaryIdentityKey(core, userId),
  }).digits;
}
