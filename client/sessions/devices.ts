/** Which devices of a user this device has sessions with, and setting up sessions from prekey bundles. */
import type { PreKeyBundleResponse } from "../../src/protocol/http";
import { SessionRecord, UntrustedIdentityError, bundleFromDeviceBundle, processPreKeyBundle } from "../crypto/index";
import { addressKey, parseAddressKey, userPrefix } from "../store/keys";
import type { StagedProtocolStore } from "./staged-store";
import type { RelayStore } from "../store/types";

/** A device a send must address: its id and current registration id. */
export interface KnownDevice {
  deviceId: number;
  registrationId: number;
}

/**
 * The devices of `userId` with a usable session (through `staged`'s pending writes), by device id.
 * @example
 * const devices = await sessionDevices(store, staged, bobId); // [{ deviceId: 1, registrationId: 4711 }]
 */
export async function sessionDevices(store: RelayStore, staged: StagedProtocolStore, userId: string): Promise<KnownDevice[]> {
  const keys = new Set((await store.list("sessions", { prefix: userPrefix(userId) })).map((e) => e.key));
  for (const op of staged.writes()) {
    if (op.table !== "sessions" || !op.key.startsWith(userPrefix(userId))) continue;
    if (op.value === undefined) keys.delete(op.key);
    else keys.add(op.key);
  }
  const out: KnownDevice[] = [];
  for (const key of keys) {
    const { deviceId } = parseAddressKey(key);
    const bytes = await staged.loadSession({ userId, deviceId });
    const current = bytes && SessionRecord.deserialize(bytes).current;
    if (current) out.push({ deviceId, registrationId: current.remoteRegistrationId });
  }
  return out.sort((a, b) => a.deviceId - b.deviceId);
}

/**
 * Starts a session with every device of a bundle response. Devices whose identity key changed are
 * skipped and returned (the staged store lists them in `untrusted`).
 * @example
 * const refused = await addBundles(staged, await api.bundles(bobId));
 */
export async function addBundles(staged: StagedProtocolStore, response: PreKeyBundleResponse): Promise<number[]> {
  const refused: number[] = [];
  for (const device of response.devices) {
    try {
      await processPreKeyBundle(staged, { userId: response.userId, deviceId: device.deviceId }, bundleFromDeviceBundle(device));
    } catch (error) {
      if (error instanceof UntrustedIdentityError) refused.push(device.deviceId);
      else throw error;
    }
  }
  return refused;
}

/**
 * Stages the removal of sessions with devices that no longer exist (and forgets their identity, so a
 * future device with that id starts fresh) or were re-registered (their old identity stays: a new key for
 * the same device must be trusted by the app).
 * @example
 * dropSessions(staged, bobId, { extra: [3], stale: [2] });
 */
export function dropSessions(staged: StagedProtocolStore, userId: string, devices: { extra: number[]; stale: number[] }): void {
  for (const deviceId of devices.extra) {
    staged.stage("sessions", addressKey(userId, deviceId), undefined);
    staged.stage("identities", addressKey(userId, deviceId), undefined);
  }
  for (const deviceId of devices.stale) staged.stage("sessions", addressKey(userId, deviceId), undefined);
}
