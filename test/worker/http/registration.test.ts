/** Registration by phone number: code requests, rate limits, verification, key checks at the door, re-registration. */
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { hashCode } from "../../../src/auth/codes";
import { capturedSms } from "../../../src/auth/sms";
import { fromBase64, toBase64 } from "../../../src/protocol/base64";
import { CLOSE_CODES } from "../../../src/protocol/frames";
import type { Session } from "../../../src/protocol/http";
import { generateKeyPair, xeddsaSign } from "../../../src/protocol/keys";
import { LIMITS, RATE_LIMITS } from "../../../src/protocol/limits";
import { deviceKeys, kyberKeyPair, type DeviceKeysBody } from "../../support/device-keys";
import { api, connect, linkDevice, newPhone, registerUser, requestCode } from "../support/relay";

let ipCounter = 0;
/** A client address of its own, so that one test's requests never count against another's per-IP limits. */
function newIp(): string {
  ipCounter += 1;
  return `198.18.${ipCounter >> 8}.${ipCounter & 255}`;
}

const requestCodeFrom = (phone: string, ip = newIp()) =>
  api("POST", "/v1/registration/code", { body: { phone }, headers: { "cf-connecting-ip": ip } });

const verify = (phone: string, code: string, device: DeviceKeysBody = deviceKeys({ preKeys: 2, kyberPreKeys: 1 }).keys, ip = newIp()) =>
  api("POST", "/v1/registration/verify", { body: { phone, code, device }, headers: { "cf-connecting-ip": ip } });

/** A 6-digit code that is not `code`. */
const wrong = (code: string) => String((Number(code) + 1) % 1_000_000).padStart(6, "0");

/** The code of the most recent SMS to `phone`. */
function lastCodeTo(phone: string): string | undefined {
  const sms = capturedSms.filter((m) => m.to === phone).at(-1);
  return sms && /\b(\d{6})\b/.exec(sms.text)?.[1];
}

async function countRows(table: string): Promise<number> {
  return (await env.DB.prepare(`SELECT COUNT(*) AS n FROM ${table}`).first<{ n: number }>())!.n;
}

const codeRow = (phone: string) =>
  env.DB.prepare("SELECT * FROM verification_codes WHERE phone = ?").bind(phone).first<{ phone: string; code_hash: string; expires_at: number; attempts: number }>();

async function accountOf(phone: string) {
  const account = await env.DB.prepare("SELECT user_id FROM accounts WHERE phone = ?").bind(phone).first<{ user_id: string }>();
  const devices = account
    ? (await env.DB.prepare("SELECT device_id, registration_id, identity_key FROM devices WHERE user_id = ?").bind(account.user_id).all()).results
    : [];
  return { account, devices };
}

afterEach(() => {
  vi.useRealTimers();
});

describe("requesting a code", () => {
  it("refuses a phone number that is not a valid E.164 number, and stores and sends nothing", async () => {
    const before = { codes: await countRows("verification_codes"), limits: await countRows("rate_limits"), sms: capturedSms.length };
    for (const phone of ["4155550123", "14155550123", "hello", "+", "+1415", "+999123456789", ""]) {
      const res = await requestCodeFrom(phone);
      expect(res.status, phone).toBe(400);
      expect(res.json.error.code, phone).toBe("invalid_phone");
    }
    expect(await countRows("verification_codes")).toBe(before.codes);
    expect(await countRows("rate_limits")).toBe(before.limits);
    expect(capturedSms.length).toBe(before.sms);
  });

  it("texts a 6-digit code and stores only its peppered hash", async () => {
    const phone = newPhone();
    const before = Date.now();
    const res = await requestCodeFrom(phone);
    expect(res.status).toBe(202);
    expect(res.json.expiresAt).toBeGreaterThanOrEqual(before + LIMITS.codeTtlMs);
    expect(res.json.expiresAt).toBeLessThanOrEqual(Date.now() + LIMITS.codeTtlMs);

    const code = lastCodeTo(phone);
    expect(code).toMatch(/^\d{6}$/);
    const row = await codeRow(phone);
    expect(row).toMatchObject({ phone, attempts: 0, expires_at: res.json.expiresAt });
    expect(row!.code_hash).toBe(await hashCode(env.TOKEN_SIGNING_KEY, phone, code!));
    expect(JSON.stringify(row)).not.toContain(code);
  });

  it("replaces an earlier code with the new one", async () => {
    const phone = newPhone();
    const first = await requestCode(phone);
    const second = await requestCode(phone);
    const stale = first === second ? undefined : await verify(phone, first);
    if (stale) expect(stale.json.error.code).toBe("invalid_code");
    expect((await verify(phone, second)).status).toBe(201);
  });

  it(`refuses more than ${RATE_LIMITS.codePerPhone.max} codes for one number per window with Retry-After, and keeps the last code`, async () => {
    const { max, windowMs } = RATE_LIMITS.codePerPhone;
    // A fixed clock a second into a window: no window boundary can fall between the requests.
    const windowStart = Math.floor(Date.now() / windowMs) * windowMs + windowMs;
    vi.useFakeTimers({ toFake: ["Date"], now: windowStart + 1000 });
    const phone = newPhone();
    for (let i = 0; i < max; i++) expect((await requestCodeFrom(phone)).status).toBe(202);
    const sent = capturedSms.length;
    const lastCode = lastCodeTo(phone)!;
    const hashBefore = (await codeRow(phone))!.code_hash;

    const refused = await requestCodeFrom(phone);
    expect(refused.status).toBe(429);
    expect(refused.json.error).toMatchObject({ code: "rate_limited", retryAfterMs: windowMs - 1000 });
    expect(refused.headers.get("Retry-After")).toBe(String(Math.ceil((windowMs - 1000) / 1000)));
    expect(capturedSms.length).toBe(sent);
    expect((await codeRow(phone))!.code_hash).toBe(hashBefore);

    vi.useRealTimers();
    expect((await verify(phone, lastCode)).status).toBe(201);
  });

  it(`refuses more than ${RATE_LIMITS.codePerIp.max} code requests from one address per window with Retry-After, without charging the number`, async () => {
    const { max, windowMs } = RATE_LIMITS.codePerIp;
    const windowStart = Math.floor(Date.now() / windowMs) * windowMs + windowMs;
    vi.useFakeTimers({ toFake: ["Date"], now: windowStart + 5000 });
    const ip = newIp();
    for (let i = 0; i < max; i++) expect((await requestCodeFrom(newPhone(), ip)).status).toBe(202);

    const phone = newPhone();
    const refused = await requestCodeFrom(phone, ip);
    expect(refused.status).toBe(429);
    expect(refused.json.error).toMatchObject({ code: "rate_limited", retryAfterMs: windowMs - 5000 });
    expect(refused.headers.get("Retry-After")).toBe(String((windowMs - 5000) / 1000));
    expect(lastCodeTo(phone)).toBeUndefined();
    expect(await codeRow(phone)).toBeNull();

    // The refused request did not count against the number: it gets its full allowance from elsewhere.
    for (let i = 0; i < RATE_LIMITS.codePerPhone.max; i++) expect((await requestCodeFrom(phone)).status).toBe(202);
  });
});

describe("verifying a code", () => {
  it("creates the account with device 1 and a working session", async () => {
    const phone = newPhone();
    const code = await requestCode(phone);
    const { keys } = deviceKeys({ preKeys: 2, kyberPreKeys: 1 });
    const res = await verify(phone, code, keys);
    expect(res.status).toBe(201);
    const session = res.json as Session;
    expect(session).toMatchObject({ deviceId: 1, accessToken: expect.any(String), refreshToken: expect.any(String) });
    expect(session.userId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(session.accessTokenExpiresAt).toBeGreaterThan(Date.now());

    const listed = await api("GET", "/v1/devices", { token: session.accessToken });
    expect(listed.status).toBe(200);
    expect(listed.json.devices).toEqual([{ deviceId: 1, registrationId: keys.registrationId, name: null, createdAt: expect.any(Number) }]);
    const refreshed = await api("POST", "/v1/tokens/refresh", { body: { refreshToken: session.refreshToken } });
    expect(refreshed.status).toBe(200);

    const { account, devices } = await accountOf(phone);
    expect(account?.user_id).toBe(session.userId);
    expect(devices).toEqual([{ device_id: 1, registration_id: keys.registrationId, identity_key: keys.identityKey }]);
    expect(await codeRow(phone)).toBeNull();
  });

  it(`answers a wrong code with the tries left, and burns the code after ${LIMITS.codeMaxAttempts} wrong tries`, async () => {
    const phone = newPhone();
    const code = await requestCode(phone);
    for (let i = 1; i <= LIMITS.codeMaxAttempts; i++) {
      const res = await verify(phone, wrong(code));
      expect(res.status).toBe(400);
      expect(res.json.error.code).toBe("invalid_code");
      const left = LIMITS.codeMaxAttempts - i;
      expect(res.json.error.message).toBe(left > 0 ? `wrong code: ${left} tries left` : "wrong code: request a new one");
      expect((await codeRow(phone))!.attempts).toBe(i);
    }
    const right = await verify(phone, code);
    expect(right.status).toBe(400);
    expect(right.json.error.code).toBe("invalid_code");
    expect(await accountOf(phone)).toEqual({ account: null, devices: [] });
  });

  it(`checks no more than ${LIMITS.codeMaxAttempts} guesses against a code, even when they arrive at once`, async () => {
    const phone = newPhone();
    const code = await requestCode(phone);
    const guesses = Array.from({ length: 4 * LIMITS.codeMaxAttempts }, (_, i) =>
      String((Number(code) + 1 + i) % 1_000_000).padStart(6, "0"),
    );
    const answers = await Promise.all(guesses.map((guess) => verify(phone, guess)));
    expect(answers.every((a) => a.status === 400 && a.json.error.code === "invalid_code")).toBe(true);
    const checked = answers.filter((a) => a.json.error.message.startsWith("wrong code"));
    expect(checked.length).toBeLessThanOrEqual(LIMITS.codeMaxAttempts);
    expect((await verify(phone, code)).status).toBe(400);
  });

  it("refuses an expired code", async () => {
    const phone = newPhone();
    const code = await requestCode(phone);
    await env.DB.prepare("UPDATE verification_codes SET expires_at = ? WHERE phone = ?").bind(Date.now() - 1, phone).run();
    const res = await verify(phone, code);
    expect(res.status).toBe(400);
    expect(res.json.error.code).toBe("invalid_code");
    expect(await accountOf(phone)).toEqual({ account: null, devices: [] });
  });

  it("accepts a code once", async () => {
    const phone = newPhone();
    const code = await requestCode(phone);
    const first = deviceKeys({ preKeys: 1, kyberPreKeys: 1 }).keys;
    expect((await verify(phone, code, first)).status).toBe(201);
    const again = await verify(phone, code);
    expect(again.status).toBe(400);
    expect(again.json.error.code).toBe("invalid_code");
    const { devices } = await accountOf(phone);
    expect(devices).toEqual([{ device_id: 1, registration_id: first.registrationId, identity_key: first.identityKey }]);
  });

  it("refuses an invalid phone number at verification too", async () => {
    const res = await verify("4155550123", "123456");
    expect(res.status).toBe(400);
    expect(res.json.error.code).toBe("invalid_phone");
  });
});

describe("device keys are checked before the code is used", () => {
  const other = generateKeyPair();
  const resigned = (publicKey: Uint8Array, by: Uint8Array = other.privateKey) => toBase64(xeddsaSign(by, publicKey));

  const cases: [string, (k: DeviceKeysBody, identity: Uint8Array) => void, string][] = [
    ["an identity key of 32 bytes", (k) => (k.identityKey = toBase64(fromBase64(k.identityKey).slice(1))), "invalid_key"],
    [
      "an identity key with the wrong type byte",
      (k) => {
        const key = fromBase64(k.identityKey);
        key[0] = 0x06;
        k.identityKey = toBase64(key);
      },
      "invalid_key",
    ],
    ["an identity key in bad base64", (k) => (k.identityKey = k.identityKey.replace(/=*$/, "").slice(0, -1) + "!"), "bad_request"],
    ["a signature in bad base64", (k) => (k.signedPreKey.signature = "not base64!"), "bad_request"],
    [
      "a signed prekey signed by another key",
      (k) => (k.signedPreKey.signature = resigned(fromBase64(k.signedPreKey.publicKey))),
      "invalid_signature",
    ],
    [
      "a last-resort Kyber key of the wrong length (validly signed)",
      (k, identity) => {
        const short = kyberKeyPair().publicKey.slice(0, -1);
        k.kyberLastResortPreKey = { ...k.kyberLastResortPreKey, publicKey: toBase64(short), signature: resigned(short, identity) };
      },
      "invalid_key",
    ],
    [
      "a one-time Kyber prekey with a bad signature",
      (k) => (k.kyberPreKeys[1]!.signature = resigned(fromBase64(k.kyberPreKeys[1]!.publicKey))),
      "invalid_signature",
    ],
    [
      `${LIMITS.maxPreKeysPerUpload + 1} one-time prekeys`,
      (k) => (k.preKeys = Array.from({ length: LIMITS.maxPreKeysPerUpload + 1 }, (_, i) => ({ keyId: i + 1, publicKey: k.preKeys[0]!.publicKey }))),
      "bad_request",
    ],
    ["one-time prekeys with the same id twice", (k) => (k.preKeys[1]!.keyId = k.preKeys[0]!.keyId), "bad_request"],
  ];

  it("refuses bad keys with 400, stores no account or device, and leaves the code usable", async () => {
    const phone = newPhone();
    const code = await requestCode(phone);
    const before = { accounts: await countRows("accounts"), devices: await countRows("devices") };
    for (const [what, tamper, errorCode] of cases) {
      const { keys, identity } = deviceKeys({ preKeys: 3, kyberPreKeys: 2 });
      tamper(keys, identity.privateKey);
      const res = await verify(phone, code, keys);
      expect(res.status, what).toBe(400);
      expect(res.json.error.code, what).toBe(errorCode);
    }
    expect(await countRows("accounts")).toBe(before.accounts);
    expect(await countRows("devices")).toBe(before.devices);
    expect((await codeRow(phone))!.attempts).toBe(0);

    expect((await verify(phone, code)).status).toBe(201);
  });
});

describe("re-registering a number", () => {
  it("keeps the user id, answers 200 and signs every old device out", async () => {
    const old = await registerUser();
    const linked = await linkDevice(old);
    const { socket: oldSocket } = await connect(old);
    const { socket: linkedSocket } = await connect(linked);

    const code = await requestCode(old.phone);
    const { keys } = deviceKeys({ preKeys: 1, kyberPreKeys: 1 });
    const res = await verify(old.phone, code, keys);
    expect(res.status).toBe(200);
    const session = res.json as Session;
    expect(session).toMatchObject({ userId: old.session.userId, deviceId: 1 });

    expect(await linkedSocket.closed).toMatchObject({ code: CLOSE_CODES.unauthorized });
    expect(await oldSocket.closed).toMatchObject({ code: CLOSE_CODES.unauthorized });
    for (const gone of [old, linked]) {
      const res = await api("GET", "/v1/devices", { token: gone.session.accessToken });
      expect(res.status).toBe(401);
      expect(res.json.error.code).toBe("unauthorized");
      expect((await api("POST", "/v1/tokens/refresh", { body: { refreshToken: gone.session.refreshToken } })).status).toBe(401);
    }
    const listed = await api("GET", "/v1/devices", { token: session.accessToken });
    expect(listed.json.devices).toEqual([expect.objectContaining({ deviceId: 1, registrationId: keys.registrationId })]);
    const { first } = await connect({ session, keys, phone: old.phone });
    expect(first).toMatchObject({ type: "ready", userId: old.session.userId, deviceId: 1 });
  });

  it("voids link codes the old devices created", async () => {
    const old = await registerUser();
    const linkCode = await api("POST", "/v1/devices/link-codes", { token: old.session.accessToken });
    expect(linkCode.status).toBe(201);

    const session = (await registerUser({ phone: old.phone })).session;
    const res = await api("POST", "/v1/devices/link", { body: { code: linkCode.json.code, device: deviceKeys({ preKeys: 1, kyberPreKeys: 1 }).keys } });
    expect(res.status).toBe(400);
    expect(res.json.error.code).toBe("invalid_code");
    expect((await api("GET", "/v1/devices", { token: session.accessToken })).json.devices).toHaveLength(1);
  });
});
