/** Linking, listing and removing a user's devices. */
import { Hono } from "hono";
import { newOpaqueToken, sha256Base64Url } from "../auth/tokens";
import { deviceInfo, insertLinkedDevice, listDevices } from "../directory/devices";
import { newFamily, newSession } from "../directory/sessions";
import { RelayError } from "../protocol/errors";
import { linkDeviceSchema, type LinkCodeResponse } from "../protocol/http";
import { LIMITS } from "../protocol/limits";
import type { AppEnv } from "./app-types";
import { requireDevice } from "./authenticate";
import { validateDeviceKeys } from "./device-keys";
import { jsonBody } from "./validate";

const PRIMARY_DEVICE = 1;

export const devices = new Hono<AppEnv>()
  /** A logged-in device creates a short-lived, single-use code that a new device redeems to join the account. */
  .post("/link-codes", requireDevice, async (c) => {
    const { userId } = c.get("device");
    const code = newOpaqueToken(24);
    const expiresAt = Date.now() + LIMITS.linkCodeTtlMs;
    await c.env.DB.prepare("INSERT INTO link_codes (code_hash, user_id, expires_at) VALUES (?, ?, ?)")
      .bind(await sha256Base64Url(code), userId, expiresAt)
      .run();
    return c.json({ code, expiresAt } satisfies LinkCodeResponse, 201);
  })
  .post("/link", jsonBody(linkDeviceSchema), async (c) => {
    const body = c.req.valid("json");
    validateDeviceKeys(body.device);
    const codeHash = await sha256Base64Url(body.code);
    const family = newFamily();
    const now = Date.now();
    const linked = await insertLinkedDevice(c.env.DB, codeHash, body.device, body.name, family, now);
    if (!linked) throw await whyNotLinked(c.env.DB, codeHash, now);
    const { user_id: userId, device_id: deviceId } = linked;
    const { statement, session } = await newSession(c.env, userId, deviceId, family, now);
    try {
      await c.env.USER.get(c.env.USER.idFromName(userId)).registerDevice({
        userId,
        deviceId,
        registrationId: body.device.registrationId,
        family,
        preKeys: body.device.preKeys,
        kyberPreKeys: body.device.kyberPreKeys,
      });
      await statement.run();
    } catch (error) {
      await c.env.DB.prepare("DELETE FROM devices WHERE user_id = ? AND device_id = ?").bind(userId, deviceId).run();
      throw error;
    }
    return c.json(session, 201);
  })
  .get("/", requireDevice, async (c) => {
    const rows = await listDevices(c.env.DB, c.get("device").userId);
    return c.json({ devices: rows.map(deviceInfo) });
  })
  /** The primary device removes any linked device; a linked device may remove itself. */
  .delete("/:deviceId{[0-9]+}", requireDevice, async (c) => {
    const { userId, deviceId: caller } = c.get("device");
    const target = Number(c.req.param("deviceId"));
    if (target === PRIMARY_DEVICE) {
      throw new RelayError(403, "forbidden", "the primary device cannot be removed: re-register the number instead");
    }
    if (caller !== PRIMARY_DEVICE && caller !== target) {
      throw new RelayError(403, "forbidden", "only the primary device can remove other devices");
    }
    const [deleted] = await c.env.DB.batch([
      c.env.DB.prepare("DELETE FROM devices WHERE user_id = ? AND device_id = ? RETURNING device_id").bind(userId, target),
      c.env.DB.prepare("DELETE FROM refresh_tokens WHERE user_id = ? AND device_id = ?").bind(userId, target),
    ]);
    if (!deleted?.results.length) throw new RelayError(404, "not_found", `no device ${target}`);
    await c.env.USER.get(c.env.USER.idFromName(userId)).removeDevice(target);
    return c.body(null, 204);
  });

async function whyNotLinked(db: D1Database, codeHash: string, now: number): Promise<RelayError> {
  const code = await db
    .prepare("SELECT user_id FROM link_codes WHERE code_hash = ? AND expires_at > ?")
    .bind(codeHash, now)
    .first<{ user_id: string }>();
  if (!code) return new RelayError(400, "invalid_code", "link code is wrong, used or expired");
  return new RelayError(409, "too_many_devices", `an account has at most ${LIMITS.maxDevicesPerUser} devices`);
}
