/** Access tokens (EdDSA JWTs), opaque random tokens and their stored hashes. */
import { SignJWT, errors, exportJWK, importJWK, importPKCS8, jwtVerify, type CryptoKey } from "jose";
import { toBase64Url } from "../protocol/base64";
import { RelayError } from "../protocol/errors";
import { LIMITS } from "../protocol/limits";

/** Who an access token speaks for: a device of a user, within one token family. */
export interface DeviceClaims {
  userId: string;
  deviceId: number;
  family: string;
}

interface KeyPair {
  privateKey: CryptoKey;
  publicKey: CryptoKey;
}

const ALG = "EdDSA";
const ISSUER = "relay";
const MAX_TOKEN_LENGTH = 4096;

const keyCache = new Map<string, Promise<KeyPair>>();

async function importKeyPair(pem: string): Promise<KeyPair> {
  try {
    const exportable = await importPKCS8(pem, ALG, { extractable: true });
    const { d: _d, ...publicJwk } = await exportJWK(exportable);
    const publicKey = await importJWK(publicJwk, ALG);
    const privateKey = await importPKCS8(pem, ALG);
    if (!("type" in publicKey) || publicKey.type !== "public") throw new TypeError("not an asymmetric key");
    return { privateKey, publicKey };
  } catch {
    throw new RelayError(500, "internal", "TOKEN_SIGNING_KEY is not an Ed25519 private key in PKCS#8 PEM");
  }
}

/** The signing key and its public half, imported once per PEM string. */
function keyPair(pem: string): Promise<KeyPair> {
  let pair = keyCache.get(pem);
  if (!pair) {
    pair = importKeyPair(pem);
    pair.catch(() => keyCache.delete(pem));
    keyCache.set(pem, pair);
  }
  return pair;
}

/** Signs an access token (EdDSA, issuer "relay", `LIMITS.accessTokenTtlSeconds` long) carrying `claims`. */
export async function issueAccessToken(
  signingKeyPem: string,
  claims: DeviceClaims,
): Promise<{ token: string; expiresAt: number }> {
  const { privateKey } = await keyPair(signingKeyPem);
  const issuedAt = Math.floor(Date.now() / 1000);
  const expiresAtSeconds = issuedAt + LIMITS.accessTokenTtlSeconds;
  const token = await new SignJWT({ dev: claims.deviceId, fam: claims.family })
    .setProtectedHeader({ alg: ALG, typ: "JWT" })
    .setSubject(claims.userId)
    .setIssuer(ISSUER)
    .setIssuedAt(issuedAt)
    .setExpirationTime(expiresAtSeconds)
    .sign(privateKey);
  return { token, expiresAt: expiresAtSeconds * 1000 };
}

function unauthorized(message: string): RelayError {
  return new RelayError(401, "unauthorized", message);
}

function describeFailure(error: unknown): RelayError {
  if (error instanceof errors.JWTExpired) return unauthorized("access token expired");
  if (error instanceof errors.JWSSignatureVerificationFailed) return unauthorized("access token signature invalid");
  if (error instanceof errors.JOSEAlgNotAllowed || error instanceof errors.JOSENotSupported) {
    return unauthorized("access token algorithm not allowed");
  }
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.claim === "iss") return unauthorized("access token issuer invalid");
    if (error.claim === "nbf" || error.claim === "iat") return unauthorized("access token not yet valid");
    return unauthorized("access token claims invalid");
  }
  return unauthorized("access token malformed");
}

/** Verifies an access token's signature, algorithm, issuer, expiry and claims; throws 401 `unauthorized` otherwise. */
export async function verifyAccessToken(signingKeyPem: string, token: string): Promise<DeviceClaims> {
  if (token.length === 0 || token.length > MAX_TOKEN_LENGTH) throw unauthorized("access token malformed");
  const { publicKey } = await keyPair(signingKeyPem);
  let payload;
  try {
    ({ payload } = await jwtVerify(token, publicKey, {
      algorithms: [ALG],
      issuer: ISSUER,
      requiredClaims: ["sub", "iat", "exp"],
    }));
  } catch (error) {
    throw describeFailure(error);
  }
  const { sub, dev, fam } = payload;
  if (
    typeof sub !== "string" || sub.length === 0 ||
    typeof dev !== "number" || !Number.isSafeInteger(dev) || dev < 1 ||
    typeof fam !== "string" || fam.length === 0
  ) {
    throw unauthorized("access token claims invalid");
  }
  return { userId: sub, deviceId: dev, family: fam };
}

/** A fresh random token, base64url without padding (`bytes` of entropy, 32 by default): refresh tokens, link codes. */
export function newOpaqueToken(bytes = 32): string {
  return toBase64Url(crypto.getRandomValues(new Uint8Array(bytes)));
}

/** SHA-256 of `text` (UTF-8), base64url without padding: how refresh tokens and link codes are stored. */
export async function sha256Base64Url(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return toBase64Url(new Uint8Array(digest));
}
