import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { takeRateLimit } from "../../../src/auth/rate-limit";
import { sha256Base64Url } from "../../../src/auth/tokens";
import { RelayError } from "../../../src/protocol/errors";
import { RATE_LIMITS } from "../../../src/protocol/limits";

const { max, windowMs } = RATE_LIMITS.codePerPhone;
const windowStart = 1_700_000_000_000 - (1_700_000_000_000 % windowMs);

async function refusal(key: string, now: number): Promise<RelayError> {
  const error = await takeRateLimit(env.DB, "codePerPhone", key, now).then(
    () => { throw new Error("event was allowed"); },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(RelayError);
  expect(error).toMatchObject({ status: 429, code: "rate_limited" });
  return error as RelayError;
}

async function storedCount(key: string): Promise<number | null> {
  const bucket = `codePerPhone:${await sha256Base64Url(key)}`;
  const row = await env.DB.prepare("SELECT count FROM rate_limits WHERE bucket = ?").bind(bucket).first<{ count: number }>();
  return row?.count ?? null;
}

const phone = () => `+1555${String(Math.floor(Math.random() * 1e7)).padStart(7, "0")}`;

describe("takeRateLimit", () => {
  it("lets max events through, then refuses with retryAfterMs", async () => {
    const key = phone();
    for (let i = 0; i < max; i++) await takeRateLimit(env.DB, "codePerPhone", key, windowStart + 1000 + i);
    const now = windowStart + 60_000;
    const error = await refusal(key, now);
    expect(error.extra.retryAfterMs).toBe(windowStart + windowMs - now);
    expect(error.extra.retryAfterMs).toBeGreaterThan(0);
    expect(error.extra.retryAfterMs).toBeLessThanOrEqual(windowMs);
    expect(error.message).toMatch(/codePerPhone/);
  });

  it("does not count refused events", async () => {
    const key = phone();
    for (let i = 0; i < max; i++) await takeRateLimit(env.DB, "codePerPhone", key, windowStart);
    for (let i = 0; i < 5; i++) await refusal(key, windowStart + i);
    expect(await storedCount(key)).toBe(max);
  });

  it("starts afresh in a new window", async () => {
    const key = phone();
    for (let i = 0; i < max; i++) await takeRateLimit(env.DB, "codePerPhone", key, windowStart);
    await refusal(key, windowStart + windowMs - 1);
    for (let i = 0; i < max; i++) await takeRateLimit(env.DB, "codePerPhone", key, windowStart + windowMs + i);
    expect(await storedCount(key)).toBe(max);
    await refusal(key, windowStart + windowMs + 10);
  });

  it("does not move back to an older window", async () => {
    const key = phone();
    for (let i = 0; i < max; i++) await takeRateLimit(env.DB, "codePerPhone", key, windowStart + windowMs);
    await refusal(key, windowStart + windowMs - 1);
  });

  it("keeps keys and limits apart, and stores keys hashed", async () => {
    const key = phone();
    for (let i = 0; i < max; i++) await takeRateLimit(env.DB, "codePerPhone", key, windowStart);
    await takeRateLimit(env.DB, "codePerPhone", phone(), windowStart);
    await takeRateLimit(env.DB, "codePerIp", key, windowStart);
    const { results } = await env.DB.prepare("SELECT bucket FROM rate_limits").all<{ bucket: string }>();
    expect(results.some((row) => row.bucket.includes(key))).toBe(false);
  });

  it("admits exactly max of concurrent events", async () => {
    const key = phone();
    const outcomes = await Promise.allSettled(
      Array.from({ length: max + 4 }, () => takeRateLimit(env.DB, "codePerPhone", key, windowStart)),
    );
    expect(outcomes.filter((o) => o.status === "fulfilled")).toHaveLength(max);
    expect(await storedCount(key)).toBe(max);
  });

  it("defaults to the current time", async () => {
    const key = phone();
    for (let i = 0; i < max; i++) await takeRateLimit(env.DB, "codePerPhone", key);
    const error = await takeRateLimit(env.DB, "codePerPhone", key).catch((e: RelayError) => e);
    expect(error).toMatchObject({ status: 429 });
    expect((error as RelayError).extra.retryAfterMs).toBeLessThanOrEqual(windowMs);
  });
});
