/** Registration by phone number: request a one-time code by SMS, then verify it with the device's keys. */
import { Hono } from "hono";
import { generateCode, hashCode, timingSafeEqual } from "../auth/codes";
import { rateLimits, takeRateLimit } from "../auth/rate-limit";
import { smsProvider } from "../auth/sms";
import { insertDevice } from "../directory/devices";
import { newFamily, newSession } from "../directory/sessions";
import { RelayError } from "../protocol/errors";
import { requestCodeSchema, verifyCodeSchema } from "../protocol/http";
import { LIMITS } from "../protocol/limits";
import type { AppEnv } from "./app-types";
import { validateDeviceKeys } from "./device-keys";
import { clientIp, jsonBody } from "./validate";

/** The E.164 form of a valid phone number; 400 `invalid_phone` otherwise. */
async function e164(phone: string): Promise<string> {
  const { toE164 } = await import("./phone");
  const number = toE164(phone);
  if (number === undefined) {
    throw new RelayError(400, "invalid_phone", "phone must be a valid number in E.164 form, e.g. +14155550123");
  }
  return number;
}

export const registration = new Hono<AppEnv>()
  .post("/code", jsonBody(requestCodeSchema), async (c) => {
    const phone = await e164(c.req.valid("json").phone);
    const limits = rateLimits(c.env.RATE_LIMIT_OVERRIDES);
    await takeRateLimit(c.env.DB, "codePerIp", clientIp(c.req.raw.headers), undefined, limits);
    await takeRateLimit(c.env.DB, "codePerPhone", phone, undefined, limits);
    const code = generateCode();
    const expiresAt = Date.now() + LIMITS.codeTtlMs;
    await c.env.DB.prepare(
      "INSERT OR REPLACE INTO verification_codes (phone, code_hash, expires_at, attempts) VALUES (?, ?, ?, 0)",
    )
      .bind(phone, await hashCode(c.env.TOKEN_SIGNING_KEY, phone, code), expiresAt)
      .run();
    await smsProvider(c.env).send(phone, `Your Relay code: ${code}`);
    return c.json({ expiresAt }, 202);
  })
  .post("/verify", jsonBody(verifyCodeSchema), async (c) => {
    const body = c.req.valid("json");
    const phone = await e164(body.phone);
    validateDeviceKeys(body.device);
    await takeRateLimit(c.env.DB, "verifyPerIp", clientIp(c.req.raw.headers), undefined, rateLimits(c.env.RATE_LIMIT_OVERRIDES));
    await consumeCode(c.env, phone, body.code);

    const now = Date.now();
    const existing = await c.env.DB.prepare("SELECT user_id FROM accounts WHERE phone = ?").bind(phone).first<{ user_id: string }>();
    const userId = existing?.user_id ?? crypto.randomUUID();
    const family = newFamily();
    const { statement, session } = await newSession(c.env, userId, 1, family, now);
    await c.env.DB.batch([
      // Re-registration of a number (a new phone) signs every old device out.
      c.env.DB.prepare("DELETE FROM devices WHERE user_id = ?").bind(userId),
      c.env.DB.prepare("DELETE FROM refresh_tokens WHERE user_id = ?").bind(userId),
      // ...and voids the link codes they made, which would otherwise still add a device to the account.
      c.env.DB.prepare("DELETE FROM link_codes WHERE user_id = ?").bind(userId),
      c.env.DB.prepare("INSERT OR IGNORE INTO accounts (user_id, phone, created_at) VALUES (?, ?, ?)").bind(userId, phone, now),
      insertDevice(c.env.DB, userId, 1, body.device, body.name, family, now),
      statement,
    ]);
    await c.env.USER.get(c.env.USER.idFromName(userId)).registerDevice({
      userId,
      deviceId: 1,
      registrationId: body.device.registrationId,
      family,
      preKeys: body.device.preKeys,
      kyberPreKeys: body.device.kyberPreKeys,
      replaceAll: true,
    });
    return c.json(session, existing ? 200 : 201);
  });

/**
 * Checks the code against the stored hash. Every guess first takes one of `LIMITS.codeMaxAttempts` tries in one
 * statement, so guesses sent at once cannot check more codes than that; the right code is then deleted.
 */
async function consumeCode(env: Env, phone: string, code: string): Promise<void> {
  const row = await env.DB.prepare(
    "UPDATE verification_codes SET attempts = attempts + 1 WHERE phone = ? AND expires_at > ? AND attempts < ? RETURNING code_hash, attempts",
  )
    .bind(phone, Date.now(), LIMITS.codeMaxAttempts)
    .first<{ code_hash: string; attempts: number }>();
  if (!row) throw new RelayError(400, "invalid_code", "no valid code for this number: request a new one");
  if (!timingSafeEqual(row.code_hash, await hashCode(env.TOKEN_SIGNING_KEY, phone, code))) {
    const left = LIMITS.codeMaxAttempts - row.attempts;
    throw new RelayError(400, "invalid_code", left > 0 ? `wrong code: ${left} tries left` : "wrong code: request a new one");
  }
  const { meta } = await env.DB.prepare("DELETE FROM verification_codes WHERE phone = ? AND code_hash = ?")
    .bind(phone, row.code_hash)
    .run();
  if (meta.changes === 0) throw new RelayError(400, "invalid_code", "code already used: request a new one");
}
