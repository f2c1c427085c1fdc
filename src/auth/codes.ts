/** Verification codes: generation, peppered hashing for storage, constant-time comparison. */
import { fromBase64, toBase64Url } from "../protocol/base64";
import { RelayError } from "../protocol/errors";
import { LIMITS } from "../protocol/limits";

const PEPPER_LABEL = "relay/code-pepper";
const CODE_SPACE = 10 ** LIMITS.codeDigits;
const UNBIASED_LIMIT = Math.floor(2 ** 32 / CODE_SPACE) * CODE_SPACE;

const encoder = new TextEncoder();
const pepperCache = new Map<string, Promise<CryptoKey>>();

/** A uniformly random code of `LIMITS.codeDigits` decimal digits (leading zeros kept). */
export function generateCode(): string {
  const draw = new Uint32Array(1);
  let value: number;
  do {
    crypto.getRandomValues(draw);
    value = draw[0]!;
  } while (value >= UNBIASED_LIMIT);
  return String(value % CODE_SPACE).padStart(LIMITS.codeDigits, "0");
}

function pemToDer(pem: string): Uint8Array {
  const body = pem.replace(/-----(BEGIN|END) [A-Z ]+-----/g, "").replace(/\s+/g, "");
  try {
    return fromBase64(body);
  } catch {
    throw new RelayError(500, "internal", "TOKEN_SIGNING_KEY is not a PEM key");
  }
}

async function derivePepper(signingKeyPem: string): Promise<CryptoKey> {
  const ikm = await crypto.subtle.importKey("raw", pemToDer(signingKeyPem), "HKDF", false, ["deriveKey"]);
  return crypto.subtle.deriveKey(
    { name: "HKDF", hash: "SHA-256", salt: new Uint8Array(0), info: encoder.encode(PEPPER_LABEL) },
    ikm,
    { name: "HMAC", hash: "SHA-256", length: 256 },
    false,
    ["sign"],
  );
}

/** The HMAC key for codes, derived once per signing key (HKDF-SHA256 over the key's DER bytes). */
function pepper(signingKeyPem: string): Promise<CryptoKey> {
  let key = pepperCache.get(signingKeyPem);
  if (!key) {
    key = derivePepper(signingKeyPem);
    key.catch(() => pepperCache.delete(signingKeyPem));
    pepperCache.set(signingKeyPem, key);
  }
  return key;
}

/** HMAC-SHA256 of `${subject}\n${code}` under a pepper derived from the signing key, base64url: how codes are stored. */
export async function hashCode(signingKeyPem: string, subject: string, code: string): Promise<string> {
  const mac = await crypto.subtle.sign("HMAC", await pepper(signingKeyPem), encoder.encode(`${subject}\n${code}`));
  return toBase64Url(new Uint8Array(mac));
}

/** Compares two strings in time that depends only on their lengths. */
export function timingSafeEqual(a: string, b: string): boolean {
  let diff = a.length ^ b.length;
  const length = Math.max(a.length, b.length);
  for (let i = 0; i < length; i++) diff |= (a.charCodeAt(i) | 0) ^ (b.charCodeAt(i) | 0);
  return diff === 0;
}
