/** Prekey bundles: fetch another user's (claiming one-time keys), upload and count one's own. */
import { Hono } from "hono";
import { rateLimits, takeRateLimit } from "../auth/rate-limit";
import { listDevices, type DeviceRow } from "../directory/devices";
import { RelayError } from "../protocol/errors";
import { uploadKeysSchema, type DeviceBundle, type PreKeyBundleResponse } from "../protocol/http";
import type { ClaimedPreKeys } from "../../durable-objects/prekeys";
import type { AppEnv } from "./app-types";
import { requireDevice } from "./authenticate";
import { validateKeyUpload } from "./device-keys";
import { jsonBody } from "./validate";

const UUID = "[0-9a-fA-F-]{36}";

function bundle(row: DeviceRow, claimed: ClaimedPreKeys | undefined): DeviceBundle {
  const kyber = claimed?.kyberPreKey;
  return {
    deviceId: row.device_id,
    registrationId: row.registration_id,
    identityKey: row.identity_key,
    signedPreKey: { keyId: row.signed_prekey_id, publicKey: row.signed_prekey, signature: row.signed_prekey_sig },
    kyberPreKey: kyber
      ? { ...kyber, lastResort: false }
      : { keyId: row.kyber_prekey_id, publicKey: row.kyber_prekey, signature: row.kyber_prekey_sig, lastResort: true },
    ...(claimed?.preKey && { preKey: claimed.preKey }),
  };
}

export const keys = new Hono<AppEnv>()
  .use(requireDevice)
  /** Every device of a user (or the one named by `?device=`), claiming one one-time key of each kind per device. */
  .get(`/:userId{${UUID}}`, async (c) => {
    const userId = c.req.param("userId");
    const only = c.req.query("device");
    if (only !== undefined && !/^[0-9]{1,3}$/.test(only)) throw new RelayError(400, "bad_request", "device must be a device id");
    const { userId: caller, deviceId } = c.get("device");
    await takeRateLimit(c.env.DB, "bundlesPerDevice", `${caller}:${deviceId}`, undefined, rateLimits(c.env.RATE_LIMIT_OVERRIDES));
    const rows = (await listDevices(c.env.DB, userId)).filter((r) => only === undefined || r.device_id === Number(only));
    if (rows.length === 0) throw new RelayError(404, "not_found", only ? `no device ${only} for this user` : "no such user");
    const claimed = await c.env.USER.get(c.env.USER.idFromName(userId)).claimPreKeys(rows.map((r) => r.device_id));
    return c.json({ userId, devices: rows.map((r) => bundle(r, claimed[r.device_id])) } satisfies PreKeyBundleResponse);
  })
  /** Replaces the calling device's signed prekey, last-resort Kyber prekey and/or one-time pools. */
  .put("/", jsonBody(uploadKeysSchema), async (c) => {
    const { userId, deviceId } = c.get("device");
    const upload = c.req.valid("json");
    const row = await c.env.DB.prepare("SELECT identity_key FROM devices WHERE user_id = ? AND device_id = ?")
      .bind(userId, deviceId)
      .first<{ identity_key: string }>();
    if (!row) throw new RelayError(401, "unauthorized", "device removed");
    validateKeyUpload(row.identity_key, upload);
    const updates: D1PreparedStatement[] = [];
    if (upload.signedPreKey) {
      const k = upload.signedPreKey;
      updates.push(
        c.env.DB.prepare("UPDATE devices SET signed_prekey_id = ?, signed_prekey = ?, signed_prekey_sig = ? WHERE user_id = ? AND device_id = ?")
          .bind(k.keyId, k.publicKey, k.signature, userId, deviceId),
      );
    }
    if (upload.kyberLastResortPreKey) {
      const k = upload.kyberLastResortPreKey;
      updates.push(
        c.env.DB.prepare("UPDATE devices SET kyber_prekey_id = ?, kyber_prekey = ?, kyber_prekey_sig = ? WHERE user_id = ? AND device_id = ?")
          .bind(k.keyId, k.publicKey, k.signature, userId, deviceId),
      );
    }
    if (updates.length > 0) await c.env.DB.batch(updates);
    if (upload.preKeys || upload.kyberPreKeys) {
      await c.env.USER.get(c.env.USER.idFromName(userId)).replacePreKeys(deviceId, upload.preKeys, upload.kyberPreKeys);
    }
    return c.body(null, 204);
  })
  /** How many one-time keys of each kind the calling device has left on the server. */
  .get("/", async (c) => {
    const { userId, deviceId } = c.get("device");
    return c.json(await c.env.USER.get(c.env.USER.idFromName(userId)).preKeyCounts(deviceId));
  });
