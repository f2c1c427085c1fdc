/** Repairs device lists after a `mismatched_devices` refusal, as Signal clients do after a 409/410. */
import type { DeviceMismatch } from "../../src/protocol/errors";
import type { Core } from "../core";
import { addBundles, dropSessions } from "./devices";
import { IdentityBlockedError } from "./fanout";
import type { StagedProtocolStore } from "./staged-store";

/**
 * Stages the repair: drops sessions with extra and stale devices, and starts sessions with missing and
 * stale ones from their bundles (`GET /v1/keys/:userId?device=N`, one claim per device). Throws
 * {@link IdentityBlockedError} when a re-registered device presents a new identity key.
 * @example
 * await repairDevices(core, staged, answer.mismatches ?? []);
 */
export async function repairDevices(core: Core, staged: StagedProtocolStore, mismatches: DeviceMismatch[]): Promise<void> {
  let blocked: string | undefined;
  for (const mismatch of mismatches) {
    dropSessions(staged, mismatch.userId, mismatch);
    for (const deviceId of [...mismatch.missing, ...mismatch.stale]) {
      let response;
      try {
        response = await core.api.bundles(mismatch.userId, deviceId);
      } catch (error) {
        if ((error as { status?: number }).status === 404) continue; // removed meanwhile: the next answer says extra
        throw error;
      }
      if ((await addBundles(staged, response)).length) blocked ??= mismatch.userId;
    }
  }
  if (blocked !== undefined) throw new IdentityBlockedError(blocked);
}
