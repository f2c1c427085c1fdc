/** Fixed-window rate limits, counted in D1. */
import { RelayError } from "../protocol/errors";
import { RATE_LIMITS, type RateLimitName } from "../protocol/limits";

export type RateLimits = Record<RateLimitName, { max: number; windowMs: number }>;

/**
 * The rate limits in force: `RATE_LIMITS`, with any named in the `RATE_LIMIT_OVERRIDES` var (JSON, e.g.
 * `{"codePerIp":{"max":100000,"windowMs":60000}}`) replaced. Meant for local load tests; unknown names are refused.
 */
export function rateLimits(overridesJson: string | undefined): RateLimits {
  if (!overridesJson) return RATE_LIMITS;
  const overrides = JSON.parse(overridesJson) as Partial<RateLimits>;
  for (const [name, limit] of Object.entries(overrides)) {
    if (!(name in RATE_LIMITS) || !Number.isSafeInteger(limit?.max) || !Number.isSafeInteger(limit?.windowMs)) {
      throw new Error(`RATE_LIMIT_OVERRIDES: bad entry ${name}`);
    }
  }
  return { ...RATE_LIMITS, ...overrides };
}
import { sha256Base64Url } from "./tokens";

// A refused event matches no row in the upsert (its WHERE is false), so it is not counted and nothing is returned.
const TAKE = `
INSERT INTO rate_limits (bucket, window_start, count) VALUES (?1, ?2, 1)
ON CONFLICT (bucket) DO UPDATE SET
  window_start = MAX(rate_limits.window_start, excluded.window_start),
  count = CASE WHEN excluded.window_start > rate_limits.window_start THEN 1 ELSE rate_limits.count + 1 END
WHERE excluded.window_start > rate_limits.window_start OR rate_limits.count < ?3
RETURNING count`;

/**
 * Counts one event against `RATE_LIMITS[name]` for `key` (stored hashed) in one atomic statement.
 * Over the limit: throws 429 `rate_limited` with `retryAfterMs`, and the event is not counted.
 */
export async function takeRateLimit(
  db: D1Database,
  name: RateLimitName,
  key: string,
  now = Date.now(),
  limits: RateLimits = RATE_LIMITS,
): Promise<void> {
  const { max, windowMs } = limits[name];
  const windowStart = Math.floor(now / windowMs) * windowMs;
  const bucket = `${name}:${await sha256Base64Url(key)}`;
  const taken = await db.prepare(TAKE).bind(bucket, windowStart, max).first<{ count: number }>();
  if (taken) return;
  const retryAfterMs = windowStart + windowMs - now;
  throw new RelayError(
    429,
    "rate_limited",
    `Rate limit ${name} reached (${max} per ${windowMs / 60_000} min); retry in ${Math.ceil(retryAfterMs / 1000)} s`,
    { retryAfterMs },
  );
}
