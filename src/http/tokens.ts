/**
 * Refresh-token rotation, and signing out. Presenting a spent refresh token is theft: the device's whole
 * token family is revoked.
 */
import { Hono } from "hono";
import { sha256Base64Url } from "../auth/tokens";
import { newFamily, newSession } from "../directory/sessions";
import { RelayError } from "../protocol/errors";
import { refreshSchema } from "../protocol/http";
import type { AppEnv } from "./app-types";
import { requireDevice } from "./authenticate";
import { jsonBody } from "./validate";

interface RefreshRow {
  user_id: string;
  device_id: number;
  family: string;
  expires_at: number;
  spent_at: number | null;
}

export const tokens = new Hono<AppEnv>()
  /** Signs the calling device out: its access and refresh tokens stop working and its sockets close. */
  .post("/revoke", requireDevice, async (c) => {
    const { userId, deviceId, family } = c.get("device");
    await revokeFamily(c.env, { user_id: userId, device_id: deviceId, family });
    return c.body(null, 204);
  })
  .post("/refresh", jsonBody(refreshSchema), async (c) => {
  const db = c.env.DB;
  const hash = await sha256Base64Url(c.req.valid("json").refreshToken);
  const row = await db
    .prepare("SELECT user_id, device_id, family, expires_at, spent_at FROM refresh_tokens WHERE token_hash = ?")
    .bind(hash)
    .first<RefreshRow>();
  if (!row) throw new RelayError(401, "unauthorized", "unknown refresh token");
  const now = Date.now();
  if (row.expires_at <= now) throw new RelayError(401, "unauthorized", "refresh token expired");
  // Mark it spent first, atomically: of two racing uses, exactly one wins and the other is treated as reuse.
  const { meta } = await db.prepare("UPDATE refresh_tokens SET spent_at = ? WHERE token_hash = ? AND spent_at IS NULL").bind(now, hash).run();
  if (meta.changes === 0) {
    await revokeFamily(c.env, row);
    throw new RelayError(401, "unauthorized", "refresh token reuse detected: the device was signed out");
  }
  const device = await db
    .prepare("SELECT token_family FROM devices WHERE user_id = ? AND device_id = ?")
    .bind(row.user_id, row.device_id)
    .first<{ token_family: string }>();
  if (device?.token_family !== row.family) throw new RelayError(401, "unauthorized", "device removed or session revoked");
  const { statement, session } = await newSession(c.env, row.user_id, row.device_id, row.family, now);
  await statement.run();
  return c.json(session);
});

async function revokeFamily(env: Env, row: Pick<RefreshRow, "user_id" | "device_id" | "family">): Promise<void> {
  const family = newFamily();
  const [updated] = await env.DB.batch([
    env.DB.prepare("UPDATE devices SET token_family = ? WHERE user_id = ? AND device_id = ? AND token_family = ?").bind(
      family,
      row.user_id,
      row.device_id,
      row.family,
    ),
    env.DB.prepare("DELETE FROM refresh_tokens WHERE family = ?").bind(row.family),
  ]);
  if (updated?.meta.changes) await env.USER.get(env.USER.idFromName(row.user_id)).revokeFamily(row.device_id, family);
}
