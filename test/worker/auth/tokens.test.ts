import { env } from "cloudflare:workers";
import { SignJWT, base64url, decodeProtectedHeader, exportPKCS8, generateKeyPair, importPKCS8 } from "jose";
import { describe, expect, it } from "vitest";
import { issueAccessToken, newOpaqueToken, sha256Base64Url, verifyAccessToken } from "../../../src/auth/tokens";
import { RelayError } from "../../../src/protocol/errors";
import { LIMITS } from "../../../src/protocol/limits";

const key = env.TOKEN_SIGNING_KEY;
const claims = { userId: "user-1", deviceId: 2, family: "fam-abc" };
const now = () => Math.floor(Date.now() / 1000);

async function craft(payload: Record<string, unknown>, signingKey: CryptoKey | Uint8Array = ownKey, alg = "EdDSA") {
  return new SignJWT(payload).setProtectedHeader({ alg }).sign(signingKey);
}
const ownKey = await importPKCS8(key, "EdDSA");
const valid = { sub: claims.userId, dev: claims.deviceId, fam: claims.family, iss: "relay" };

async function rejection(token: string): Promise<RelayError> {
  const error = await verifyAccessToken(key, token).then(
    () => { throw new Error("token was accepted"); },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(RelayError);
  expect((error as RelayError).status).toBe(401);
  expect((error as RelayError).code).toBe("unauthorized");
  return error as RelayError;
}

describe("access tokens", () => {
  it("round-trips its claims", async () => {
    const before = Date.now();
    const { token, expiresAt } = await issueAccessToken(key, claims);
    expect(decodeProtectedHeader(token).alg).toBe("EdDSA");
    expect(expiresAt).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000 + LIMITS.accessTokenTtlSeconds * 1000);
    expect(expiresAt).toBeLessThanOrEqual(Date.now() + LIMITS.accessTokenTtlSeconds * 1000);
    expect(await verifyAccessToken(key, token)).toEqual(claims);
  });

  it("carries sub, dev, fam, iat, exp and iss", async () => {
    const { token } = await issueAccessToken(key, claims);
    const payload = JSON.parse(new TextDecoder().decode(base64url.decode(token.split(".")[1]!)));
    expect(payload).toMatchObject({ sub: "user-1", dev: 2, fam: "fam-abc", iss: "relay" });
    expect(payload.exp - payload.iat).toBe(LIMITS.accessTokenTtlSeconds);
  });

  it("accepts a token crafted with the same key", async () => {
    const token = await craft({ ...valid, iat: now(), exp: now() + 60 });
    expect(await verifyAccessToken(key, token)).toEqual(claims);
  });

  it("rejects an expired token", async () => {
    const token = await craft({ ...valid, iat: now() - 3600, exp: now() - 60 });
    expect((await rejection(token)).message).toBe("access token expired");
  });

  it("rejects a token signed with another key", async () => {
    const other = await generateKeyPair("EdDSA");
    const token = await craft({ ...valid, iat: now(), exp: now() + 60 }, other.privateKey);
    expect((await rejection(token)).message).toBe("access token signature invalid");
  });

  it("rejects a tampered payload", async () => {
    const { token } = await issueAccessToken(key, claims);
    const [header, , signature] = token.split(".");
    const forged = base64url.encode(JSON.stringify({ ...valid, sub: "someone-else", iat: now(), exp: now() + 60 }));
    expect((await rejection(`${header}.${forged}.${signature}`)).message).toBe("access token signature invalid");
  });

  it("rejects alg none", async () => {
    const header = base64url.encode(JSON.stringify({ alg: "none", typ: "JWT" }));
    const payload = base64url.encode(JSON.stringify({ ...valid, iat: now(), exp: now() + 60 }));
    expect((await rejection(`${header}.${payload}.`)).message).toBe("access token algorithm not allowed");
  });

  it("rejects HS256", async () => {
    const token = await craft({ ...valid, iat: now(), exp: now() + 60 }, new TextEncoder().encode(key), "HS256");
    expect((await rejection(token)).message).toBe("access token algorithm not allowed");
  });

  it("rejects garbage", async () => {
    for (const garbage of ["", "garbage", "a.b.c", "x".repeat(10_000), `${base64url.encode("{}")}..`]) {
      expect((await rejection(garbage)).message).toBe("access token malformed");
    }
  });

  it("rejects a wrong or missing issuer", async () => {
    const wrong = await craft({ ...valid, iss: "someone", iat: now(), exp: now() + 60 });
    expect((await rejection(wrong)).message).toBe("access token issuer invalid");
    const { iss: _iss, ...noIssuer } = valid;
    const missing = await craft({ ...noIssuer, iat: now(), exp: now() + 60 });
    expect((await rejection(missing)).message).toBe("access token issuer invalid");
  });

  it("rejects tokens without expiry or with bad claim shapes", async () => {
    expect((await rejection(await craft({ ...valid, iat: now() }))).message).toBe("access token claims invalid");
    for (const bad of [{ dev: "2" }, { dev: 0 }, { dev: 1.5 }, { fam: "" }, { fam: 7 }, { dev: undefined }, { fam: undefined }]) {
      const token = await craft({ ...valid, ...bad, iat: now(), exp: now() + 60 });
      expect((await rejection(token)).message).toBe("access token claims invalid");
    }
  });

  it("verifies with the key it was issued with only", async () => {
    const otherPem = await exportPKCS8((await generateKeyPair("EdDSA", { extractable: true })).privateKey);
    const { token } = await issueAccessToken(otherPem, claims);
    expect(await verifyAccessToken(otherPem, token)).toEqual(claims);
    expect((await rejection(token)).message).toBe("access token signature invalid");
  });

  it("reports an unusable signing key as an internal error", async () => {
    await expect(issueAccessToken("not a key", claims)).rejects.toMatchObject({ status: 500, code: "internal" });
  });
});

describe("opaque tokens", () => {
  it("are base64url of the requested entropy and unique", () => {
    const token = newOpaqueToken();
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(newOpaqueToken(16)).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(new Set(Array.from({ length: 100 }, () => newOpaqueToken())).size).toBe(100);
  });

  it("hash to SHA-256 base64url", async () => {
    expect(await sha256Base64Url("abc")).toBe("ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0");
    expect(await sha256Base64Url("abd")).not.toBe(await sha256Base64Url("abc"));
  });
});
