/** Prekey bundles: what a fetch hands out and claims, and a device replacing and counting its own keys. */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { toBase64 } from "../../../src/protocol/base64";
import type { DeviceBundle, PreKeyBundleResponse, UploadKeysBody } from "../../../src/protocol/http";
import { sha256Base64Url } from "../../../src/auth/tokens";
import { LIMITS, RATE_LIMITS } from "../../../src/protocol/limits";
import { generateKeyPair, xeddsaSign, type IdentityKeyPair } from "../../../src/protocol/keys";
import { deviceKeys, kyberKeyPair, type DeviceKeysOptions } from "../../support/device-keys";
import { api, linkDevice, newPhone, registerUser, requestCode, type TestDevice } from "../support/relay";

/** Registers a user and keeps the identity key pair, to sign later uploads. */
async function registerWithIdentity(options: DeviceKeysOptions): Promise<{ device: TestDevice; identity: IdentityKeyPair }> {
  const phone = newPhone();
  const code = await requestCode(phone);
  const { keys, identity } = deviceKeys(options);
  const res = await api("POST", "/v1/registration/verify", { body: { phone, code, device: keys } });
  expect(res.status).toBe(201);
  return { device: { session: res.json, keys, phone }, identity };
}

const fetchBundle = async (asker: TestDevice, owner: TestDevice, query = "") => {
  const res = await api("GET", `/v1/keys/${owner.session.userId}${query}`, { token: asker.session.accessToken });
  expect(res.status).toBe(200);
  return res.json as PreKeyBundleResponse;
};

const counts = async (d: TestDevice) => {
  const res = await api("GET", "/v1/keys", { token: d.session.accessToken });
  expect(res.status).toBe(200);
  return res.json as { preKeys: number; kyberPreKeys: number };
};

const upload = (d: TestDevice, body: UploadKeysBody | Record<string, unknown>) => api("PUT", "/v1/keys", { token: d.session.accessToken, body });

/** Fresh keys signed by `identity`: EC prekeys, Kyber prekeys, a signed prekey and a last-resort key, with the given ids. */
function freshKeys(identity: IdentityKeyPair, ids: { preKeys?: number[]; kyberPreKeys?: number[]; signedPreKey?: number; lastResort?: number }) {
  const signed = (keyId: number, publicKey: Uint8Array) => ({
    keyId,
    publicKey: toBase64(publicKey),
    signature: toBase64(xeddsaSign(identity.privateKey, publicKey)),
  });
  return {
    ...(ids.preKeys && { preKeys: ids.preKeys.map((keyId) => ({ keyId, publicKey: toBase64(generateKeyPair().publicKey) })) }),
    ...(ids.kyberPreKeys && { kyberPreKeys: ids.kyberPreKeys.map((keyId) => signed(keyId, kyberKeyPair().publicKey)) }),
    ...(ids.signedPreKey !== undefined && { signedPreKey: signed(ids.signedPreKey, generateKeyPair().publicKey) }),
    ...(ids.lastResort !== undefined && { kyberLastResortPreKey: signed(ids.lastResort, kyberKeyPair().publicKey) }),
  } satisfies UploadKeysBody;
}

async function storedSignedKeys(d: TestDevice) {
  return env.DB.prepare("SELECT signed_prekey_id, signed_prekey, kyber_prekey_id, kyber_prekey FROM devices WHERE user_id = ? AND device_id = ?")
    .bind(d.session.userId, d.session.deviceId)
    .first();
}

describe("fetching a prekey bundle", () => {
  it("returns every device's registered keys with one one-time EC and one one-time Kyber prekey each", async () => {
    const alice = await registerUser();
    const bob = await registerUser({ preKeys: 3, kyberPreKeys: 2 });
    const bob2 = await linkDevice(bob);

    const bundle = await fetchBundle(alice, bob);
    const expected = (d: TestDevice): DeviceBundle => ({
      deviceId: d.session.deviceId,
      registrationId: d.keys.registrationId,
      identityKey: d.keys.identityKey,
      signedPreKey: d.keys.signedPreKey,
      preKey: d.keys.preKeys[0]!,
      kyberPreKey: { ...d.keys.kyberPreKeys[0]!, lastResort: false },
    });
    expect(bundle).toEqual({ userId: bob.session.userId, devices: [expected(bob), expected(bob2)] });
  });

  it("claims one-time keys: each fetch gets other keys, then the last-resort Kyber key and no EC prekey", async () => {
    const alice = await registerUser();
    const bob = await registerUser({ preKeys: 3, kyberPreKeys: 2 });
    const lastResort = { ...bob.keys.kyberLastResortPreKey, lastResort: true };

    const seen = [];
    for (let i = 0; i < 4; i++) seen.push((await fetchBundle(alice, bob)).devices[0]!);
    expect(seen.map((d) => d.preKey?.keyId)).toEqual([1, 2, 3, undefined]);
    expect(seen.map((d) => d.kyberPreKey)).toEqual([
      { ...bob.keys.kyberPreKeys[0]!, lastResort: false },
      { ...bob.keys.kyberPreKeys[1]!, lastResort: false },
      lastResort,
      lastResort,
    ]);
    expect(seen[3]).not.toHaveProperty("preKey");
    expect(seen[3]!.signedPreKey).toEqual(bob.keys.signedPreKey);
    expect(await counts(bob)).toEqual({ preKeys: 0, kyberPreKeys: 0 });
  });

  it("never hands the same one-time key to two concurrent fetches", async () => {
    const alice = await registerUser();
    const carol = await registerUser();
    const bob = await registerUser({ preKeys: 10, kyberPreKeys: 10 });
    const askers = Array.from({ length: 12 }, (_, i) => (i % 2 ? alice : carol));
    const bundles = await Promise.all(askers.map((asker) => fetchBundle(asker, bob)));
    const devices = bundles.map((b) => b.devices[0]!);

    const ecIds = devices.flatMap((d) => (d.preKey ? [d.preKey.keyId] : []));
    expect(ecIds.sort((x, y) => x - y)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    const kyberIds = devices.filter((d) => !d.kyberPreKey.lastResort).map((d) => d.kyberPreKey.keyId);
    expect(kyberIds.sort((x, y) => x - y)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(devices.filter((d) => d.kyberPreKey.lastResort).map((d) => d.kyberPreKey.keyId)).toEqual([11, 11]);
    expect(await counts(bob)).toEqual({ preKeys: 0, kyberPreKeys: 0 });
  });

  it("returns only the device named by ?device= and claims only its keys", async () => {
    const alice = await registerUser();
    const bob = await registerUser({ preKeys: 3, kyberPreKeys: 2 });
    const bob2 = await linkDevice(bob);

    const bundle = await fetchBundle(alice, bob, "?device=2");
    expect(bundle.devices.map((d) => d.deviceId)).toEqual([2]);
    expect(bundle.devices[0]).toMatchObject({ registrationId: bob2.keys.registrationId, preKey: bob2.keys.preKeys[0] });
    expect(await counts(bob)).toEqual({ preKeys: 3, kyberPreKeys: 2 });
    expect(await counts(bob2)).toEqual({ preKeys: 1, kyberPreKeys: 0 });

    const missing = await api("GET", `/v1/keys/${bob.session.userId}?device=3`, { token: alice.session.accessToken });
    expect(missing.status).toBe(404);
    expect(missing.json.error.code).toBe("not_found");
    const bad = await api("GET", `/v1/keys/${bob.session.userId}?device=two`, { token: alice.session.accessToken });
    expect(bad.status).toBe(400);
    expect(bad.json.error.code).toBe("bad_request");
  });

  it("answers 404 for an unknown user", async () => {
    const alice = await registerUser();
    const res = await api("GET", `/v1/keys/${crypto.randomUUID()}`, { token: alice.session.accessToken });
    expect(res.status).toBe(404);
    expect(res.json.error.code).toBe("not_found");
  });

  it("limits how many bundles one device fetches, and claims nothing past the limit", async () => {
    const alice = await registerUser();
    const bob = await registerUser({ preKeys: 3, kyberPreKeys: 2 });
    const { max, windowMs } = RATE_LIMITS.bundlesPerDevice;
    const bucket = `bundlesPerDevice:${await sha256Base64Url(`${alice.session.userId}:${alice.session.deviceId}`)}`;
    await env.DB.prepare("INSERT OR REPLACE INTO rate_limits (bucket, window_start, count) VALUES (?, ?, ?)")
      .bind(bucket, Math.floor(Date.now() / windowMs) * windowMs, max)
      .run();
    const res = await api("GET", `/v1/keys/${bob.session.userId}`, { token: alice.session.accessToken });
    expect(res.status).toBe(429);
    expect(res.json.error.code).toBe("rate_limited");
    expect(Number(res.headers.get("Retry-After"))).toBeGreaterThan(0);
    expect(await counts(bob)).toEqual({ preKeys: 3, kyberPreKeys: 2 });
    expect((await api("GET", `/v1/keys/${alice.session.userId}`, { token: bob.session.accessToken })).status).toBe(200);
  });

  it("answers 401 with WWW-Authenticate without a valid token, and claims nothing", async () => {
    const bob = await registerUser({ preKeys: 3, kyberPreKeys: 2 });
    for (const token of [undefined, "not-a-token"]) {
      const res = await api("GET", `/v1/keys/${bob.session.userId}`, { token });
      expect(res.status).toBe(401);
      expect(res.json.error.code).toBe("unauthorized");
      expect(res.headers.get("WWW-Authenticate")).toMatch(/^Bearer realm="relay"/);
    }
    expect((await api("GET", "/v1/keys")).status).toBe(401);
    expect((await api("PUT", "/v1/keys", { body: {} })).status).toBe(401);
    expect(await counts(bob)).toEqual({ preKeys: 3, kyberPreKeys: 2 });
  });
});

describe("uploading keys", () => {
  it("replaces the one-time pools and the signed and last-resort keys", async () => {
    const alice = await registerUser();
    const { device: bob, identity } = await registerWithIdentity({ preKeys: 3, kyberPreKeys: 2 });
    const next = freshKeys(identity, { preKeys: [101, 102, 103, 104], kyberPreKeys: [201, 202], signedPreKey: 7, lastResort: 300 });

    expect((await upload(bob, next)).status).toBe(204);
    expect(await counts(bob)).toEqual({ preKeys: 4, kyberPreKeys: 2 });
    const seen = [];
    for (let i = 0; i < 3; i++) seen.push((await fetchBundle(alice, bob)).devices[0]!);
    expect(seen.map((d) => d.preKey)).toEqual(next.preKeys!.slice(0, 3));
    expect(seen.map((d) => d.kyberPreKey)).toEqual([
      { ...next.kyberPreKeys![0]!, lastResort: false },
      { ...next.kyberPreKeys![1]!, lastResort: false },
      { ...next.kyberLastResortPreKey, lastResort: true },
    ]);
    expect(seen.every((d) => d.signedPreKey.keyId === 7 && d.signedPreKey.publicKey === next.signedPreKey!.publicKey)).toBe(true);
  });

  it("replaces only the pool it carries", async () => {
    const { device: bob, identity } = await registerWithIdentity({ preKeys: 3, kyberPreKeys: 2 });
    expect((await upload(bob, freshKeys(identity, { preKeys: [50] }))).status).toBe(204);
    expect(await counts(bob)).toEqual({ preKeys: 1, kyberPreKeys: 2 });
    expect((await upload(bob, freshKeys(identity, { kyberPreKeys: [60, 61, 62] }))).status).toBe(204);
    expect(await counts(bob)).toEqual({ preKeys: 1, kyberPreKeys: 3 });
    expect((await upload(bob, { preKeys: [] })).status).toBe(204);
    expect(await counts(bob)).toEqual({ preKeys: 0, kyberPreKeys: 3 });
  });

  it("refuses an upload with a bad signature, key or size, and changes nothing", async () => {
    const { device: bob, identity } = await registerWithIdentity({ preKeys: 3, kyberPreKeys: 2 });
    const stranger = generateKeyPair();
    const before = await storedSignedKeys(bob);

    const cases: [string, Record<string, unknown>, number, string][] = [
      [
        "a Kyber prekey signed by another key, next to valid keys",
        { ...freshKeys(identity, { preKeys: [9], signedPreKey: 8 }), ...freshKeys(stranger, { kyberPreKeys: [20] }) },
        400,
        "invalid_signature",
      ],
      ["a signed prekey signed by another key", { ...freshKeys(stranger, { signedPreKey: 8 }), ...freshKeys(identity, { preKeys: [9] }) }, 400, "invalid_signature"],
      ["a last-resort key signed by another key", freshKeys(stranger, { lastResort: 30 }), 400, "invalid_signature"],
      ["an EC prekey of 32 bytes", { preKeys: [{ keyId: 9, publicKey: toBase64(generateKeyPair().publicKey.slice(1)) }] }, 400, "invalid_key"],
      ["duplicate one-time key ids", freshKeys(identity, { kyberPreKeys: [5, 5] }), 400, "bad_request"],
      [`${LIMITS.maxPreKeysPerUpload + 1} EC prekeys`, freshKeys(identity, { preKeys: Array.from({ length: LIMITS.maxPreKeysPerUpload + 1 }, (_, i) => i) }), 400, "bad_request"],
    ];
    for (const [what, body, status, code] of cases) {
      const res = await upload(bob, body);
      expect(res.status, what).toBe(status);
      expect(res.json.error.code, what).toBe(code);
    }
    expect(await counts(bob)).toEqual({ preKeys: 3, kyberPreKeys: 2 });
    expect(await storedSignedKeys(bob)).toEqual(before);
  });

  it("counts the calling device's own pools", async () => {
    const bob = await registerUser({ preKeys: 3, kyberPreKeys: 2 });
    const bob2 = await linkDevice(bob);
    expect(await counts(bob)).toEqual({ preKeys: 3, kyberPreKeys: 2 });
    expect(await counts(bob2)).toEqual({ preKeys: 2, kyberPreKeys: 1 });
  });
});
