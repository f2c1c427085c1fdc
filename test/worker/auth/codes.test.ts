import { env } from "cloudflare:workers";
import { exportPKCS8, generateKeyPair } from "jose";
import { describe, expect, it } from "vitest";
import { generateCode, hashCode, timingSafeEqual } from "../../../src/auth/codes";
import { LIMITS } from "../../../src/protocol/limits";

const key = env.TOKEN_SIGNING_KEY;

describe("verification codes", () => {
  it(`have ${LIMITS.codeDigits} digits`, () => {
    expect(LIMITS.codeDigits).toBe(6);
    for (let i = 0; i < 200; i++) expect(generateCode()).toMatch(/^\d{6}$/);
  });

  it("use every digit in every position", () => {
    const seen = Array.from({ length: LIMITS.codeDigits }, () => new Set<string>());
    const codes = Array.from({ length: 2000 }, generateCode);
    for (const code of codes) [...code].forEach((digit, i) => seen[i]!.add(digit));
    for (const digits of seen) expect(digits.size).toBe(10);
    expect(new Set(codes).size).toBeGreaterThan(1990);
  });

  it("hash deterministically, per phone and per code", async () => {
    const hash = await hashCode(key, "+15551234567", "123456");
    expect(hash).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(await hashCode(key, "+15551234567", "123456")).toBe(hash);
    expect(await hashCode(key, "+15551234568", "123456")).not.toBe(hash);
    expect(await hashCode(key, "+15551234567", "123457")).not.toBe(hash);
    expect(await hashCode(key, "+1555123456", "7123456")).not.toBe(hash);
  });

  it("hash under a pepper that depends on the signing key", async () => {
    const otherPem = await exportPKCS8((await generateKeyPair("EdDSA", { extractable: true })).privateKey);
    expect(await hashCode(otherPem, "+15551234567", "123456")).not.toBe(await hashCode(key, "+15551234567", "123456"));
  });
});

describe("timingSafeEqual", () => {
  it("compares strings", () => {
    expect(timingSafeEqual("abc", "abc")).toBe(true);
    expect(timingSafeEqual("", "")).toBe(true);
    expect(timingSafeEqual("abc", "abd")).toBe(false);
    expect(timingSafeEqual("abc", "ab")).toBe(false);
    expect(timingSafeEqual("ab", "abc")).toBe(false);
    expect(timingSafeEqual("", "a")).toBe(false);
  });
});
