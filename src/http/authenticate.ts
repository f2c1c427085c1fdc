import { createMiddleware } from "hono/factory";
import { verifyAccessToken } from "../auth/tokens";
import { RelayError } from "../protocol/errors";
import type { AppEnv } from "./app-types";

/**
 * Requires `Authorization: Bearer <access token>` of a device that still exists with the token's family
 * (so tokens of removed or revoked devices stop working at once, not when they expire).
 */
export const requireDevice = createMiddleware<AppEnv>(async (c, next) => {
  const header = c.req.header("authorization") ?? "";
  const match = /^Bearer ([A-Za-z0-9._-]+)$/i.exec(header);
  if (!match) throw new RelayError(401, "unauthorized", "missing bearer access token");
  const claims = await verifyAccessToken(c.env.TOKEN_SIGNING_KEY, match[1]!);
  const row = await c.env.DB.prepare("SELECT token_family FROM devices WHERE user_id = ? AND device_id = ?")
    .bind(claims.userId, claims.deviceId)
    .first<{ token_family: string }>();
  if (row?.token_family !== claims.family) throw new RelayError(401, "unauthorized", "device removed or session revoked");
  c.set("device", claims);
  await next();
});
