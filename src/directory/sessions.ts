/** Token sessions: an access token plus a rotating refresh token, both bound to one device's token family. */
import { issueAccessToken, newOpaqueToken, sha256Base64Url } from "../auth/tokens";
import type { Session } from "../protocol/http";
import { LIMITS } from "../protocol/limits";

/** A statement storing a new refresh token, and the session to hand out once it ran. */
export async function newSession(env: Env, userId: string, deviceId: number, family: string, now = Date.now()) {
  const refreshToken = newOpaqueToken();
  const { token, expiresAt } = await issueAccessToken(env.TOKEN_SIGNING_KEY, { userId, deviceId, family });
  const statement = env.DB.prepare(
    "INSERT INTO refresh_tokens (token_hash, user_id, device_id, family, expires_at) VALUES (?, ?, ?, ?, ?)",
  ).bind(await sha256Base64Url(refreshToken), userId, deviceId, family, now + LIMITS.refreshTokenTtlMs);
  const session: Session = { userId, deviceId, accessToken: token, accessTokenExpiresAt: expiresAt, refreshToken };
  return { statement, session };
}

/** A fresh random token family (a device's login lineage). */
export function newFamily(): string {
  return newOpaqueToken(16);
}
