/** Identity keys of channel posters, to check their signatures: known sessions first, then the key directory (cached). */
import { fromBase64 } from "../../src/protocol/base64";
import type { Core } from "../core";
import { addressKey } from "../store/keys";
import { put } from "../store/types";

/**
 * The identity key (33 bytes) of device `deviceId` of `userId`: our own, a trusted one from a pairwise session,
 * one fetched before, or else one fetched from the key directory now and cached. Undefined when the device is unknown.
 * @example
 * const key = await signerKey(core, post.from, post.fromDevice);
 * if (!key || !verifyPost(key, post, sealed, signature)) refuse();
 */
export async function signerKey(core: Core, userId: string, deviceId: number): Promise<Uint8Array | undefined> {
  if (userId === core.userId && deviceId === core.deviceId) return core.local.identity.publicKey;
  const address = addressKey(userId, deviceId);
  const trusted = await core.store.get("identities", address);
  if (trusted) return trusted.key;
  const cached = await core.store.get("signerKeys", address);
  if (cached) return cached;
  let device;
  try {
    // The directory has no identity-only route: a bundle answers it (and claims one-time prekeys we do not use).
    device = (await core.api.bundles(userId, deviceId)).devices.find((d) => d.deviceId === deviceId);
  } catch (error) {
    if ((error as { status?: number }).status === 404) return undefined;
    throw error;
  }
  if (!device) return undefined;
  const key = fromBase64(device.identityKey);
  await core.store.write([put("signerKeys", address, key)]);
  return key;
}
