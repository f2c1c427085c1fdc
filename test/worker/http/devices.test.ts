/** Linking, listing and removing devices: link codes, the device cap, who may remove whom, what removal revokes. */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { sha256Base64Url } from "../../../src/auth/tokens";
import { CLOSE_CODES } from "../../../src/protocol/frames";
import type { Session } from "../../../src/protocol/http";
import { LIMITS } from "../../../src/protocol/limits";
import { deviceKeys } from "../../support/device-keys";
import { addressTo, api, connect, linkDevice, registerUser, type TestDevice } from "../support/relay";

const stubOf = (d: TestDevice) => env.USER.get(env.USER.idFromName(d.session.userId));

/** What the user's UserDO holds for `deviceId`: its directory entry, inbox rows and one-time prekeys. */
async function objectState(d: TestDevice, deviceId: number) {
  return runInDurableObject(stubOf(d), (_obj, state) => {
    const count = (table: string) =>
      state.storage.sql.exec<{ n: number }>(`SELECT COUNT(*) AS n FROM ${table} WHERE device_id = ?`, deviceId).one().n;
    return { devices: count("devices"), inbox: count("inbox"), prekeys: count("prekeys") };
  });
}

async function deviceIds(d: TestDevice): Promise<number[]> {
  const { results } = await env.DB.prepare("SELECT device_id FROM devices WHERE user_id = ? ORDER BY device_id").bind(d.session.userId).all<{ device_id: number }>();
  return results.map((r) => r.device_id);
}

async function newLinkCode(d: TestDevice): Promise<string> {
  const res = await api("POST", "/v1/devices/link-codes", { token: d.session.accessToken });
  expect(res.status).toBe(201);
  return res.json.code;
}

const link = (code: string, name?: string) =>
  api("POST", "/v1/devices/link", { body: { code, name, device: deviceKeys({ preKeys: 2, kyberPreKeys: 1 }).keys } });

const linkCodeStored = async (code: string) =>
  (await env.DB.prepare("SELECT 1 FROM link_codes WHERE code_hash = ?").bind(await sha256Base64Url(code)).first()) !== null;

describe("linking a device", () => {
  it("issues a single-use code, stored hashed, that adds device 2 with tokens of its own", async () => {
    const primary = await registerUser();
    const before = Date.now();
    const codeRes = await api("POST", "/v1/devices/link-codes", { token: primary.session.accessToken });
    expect(codeRes.status).toBe(201);
    const { code, expiresAt } = codeRes.json as { code: string; expiresAt: number };
    expect(expiresAt).toBeGreaterThanOrEqual(before + LIMITS.linkCodeTtlMs);
    const stored = await env.DB.prepare("SELECT * FROM link_codes WHERE user_id = ?").bind(primary.session.userId).all();
    expect(stored.results).toEqual([{ code_hash: await sha256Base64Url(code), user_id: primary.session.userId, expires_at: expiresAt }]);

    const { keys } = deviceKeys({ preKeys: 2, kyberPreKeys: 1 });
    const res = await api("POST", "/v1/devices/link", { body: { code, name: "Laptop", device: keys } });
    expect(res.status).toBe(201);
    const session = res.json as Session;
    expect(session).toMatchObject({ userId: primary.session.userId, deviceId: 2 });
    expect(session.accessToken).not.toBe(primary.session.accessToken);
    expect(await linkCodeStored(code)).toBe(false);

    const listed = await api("GET", "/v1/devices", { token: session.accessToken });
    expect(listed.status).toBe(200);
    expect(listed.json.devices).toEqual([
      { deviceId: 1, registrationId: primary.keys.registrationId, name: null, createdAt: expect.any(Number) },
      { deviceId: 2, registrationId: keys.registrationId, name: "Laptop", createdAt: expect.any(Number) },
    ]);
    const { first } = await connect({ session, keys, phone: primary.phone });
    expect(first).toMatchObject({ type: "ready", userId: primary.session.userId, deviceId: 2, pending: 0 });
    expect((await api("POST", "/v1/tokens/refresh", { body: { refreshToken: session.refreshToken } })).status).toBe(200);

    const again = await link(code);
    expect(again.status).toBe(400);
    expect(again.json.error.code).toBe("invalid_code");
    expect(await deviceIds(primary)).toEqual([1, 2]);
  });

  it("refuses an expired link code and adds nothing", async () => {
    const primary = await registerUser();
    const code = await newLinkCode(primary);
    await env.DB.prepare("UPDATE link_codes SET expires_at = ? WHERE code_hash = ?").bind(Date.now() - 1, await sha256Base64Url(code)).run();
    const res = await link(code);
    expect(res.status).toBe(400);
    expect(res.json.error.code).toBe("invalid_code");
    expect(await deviceIds(primary)).toEqual([1]);
  });

  it("refuses an unknown link code", async () => {
    const res = await link("A".repeat(32));
    expect(res.status).toBe(400);
    expect(res.json.error.code).toBe("invalid_code");
  });

  it("checks the new device's keys before using the code", async () => {
    const primary = await registerUser();
    const code = await newLinkCode(primary);
    const { keys } = deviceKeys({ preKeys: 2, kyberPreKeys: 1 });
    keys.signedPreKey.signature = keys.kyberLastResortPreKey.signature;
    const res = await api("POST", "/v1/devices/link", { body: { code, device: keys } });
    expect(res.status).toBe(400);
    expect(res.json.error.code).toBe("invalid_signature");
    expect(await deviceIds(primary)).toEqual([1]);
    expect(await linkCodeStored(code)).toBe(true);
    expect((await link(code)).status).toBe(201);
  });

  it(`refuses a device beyond ${LIMITS.maxDevicesPerUser} with 409 and keeps the code for after a removal`, async () => {
    const primary = await registerUser();
    for (let i = 1; i < LIMITS.maxDevicesPerUser; i++) await linkDevice(primary);
    expect(await deviceIds(primary)).toEqual([1, 2, 3, 4, 5]);

    const code = await newLinkCode(primary);
    const refused = await link(code);
    expect(refused.status).toBe(409);
    expect(refused.json.error.code).toBe("too_many_devices");
    expect(await deviceIds(primary)).toEqual([1, 2, 3, 4, 5]);
    expect(await objectState(primary, 6)).toEqual({ devices: 0, inbox: 0, prekeys: 0 });
    expect(await linkCodeStored(code)).toBe(true);

    expect((await api("DELETE", "/v1/devices/3", { token: primary.session.accessToken })).status).toBe(204);
    const linked = await link(code);
    expect(linked.status).toBe(201);
    expect(linked.json.deviceId).toBe(3);
    expect(await deviceIds(primary)).toEqual([1, 2, 3, 4, 5]);
  });

  it("gives the next linked device the lowest free id, and the removed device's token does not work for it", async () => {
    const primary = await registerUser();
    const second = await linkDevice(primary);
    await linkDevice(primary);
    expect((await api("DELETE", "/v1/devices/2", { token: primary.session.accessToken })).status).toBe(204);

    const reused = await linkDevice(primary);
    expect(reused.session.deviceId).toBe(2);
    expect((await api("GET", "/v1/devices", { token: reused.session.accessToken })).status).toBe(200);
    expect((await api("GET", "/v1/devices", { token: second.session.accessToken })).status).toBe(401);
    const { first } = await connect(reused);
    expect(first).toMatchObject({ type: "ready", deviceId: 2, pending: 0 });
  });
});

describe("removing a device", () => {
  it("signs the removed device out everywhere and deletes its inbox and prekeys", async () => {
    const alice = await registerUser();
    const bob = await registerUser();
    const bob2 = await linkDevice(bob);
    const { socket: a } = await connect(alice);
    const { socket: laptop } = await connect(bob2);
    expect(await a.request({ type: "send", id: "before-removal", to: bob.session.userId, messages: addressTo([bob, bob2], "hi") })).toMatchObject({ type: "sent" });
    await laptop.receive(1, false); // delivered, never acknowledged: still stored
    expect(await objectState(bob, 2)).toEqual({ devices: 1, inbox: 1, prekeys: 3 });

    const res = await api("DELETE", "/v1/devices/2", { token: bob.session.accessToken });
    expect(res.status).toBe(204);

    expect(await laptop.next("error")).toMatchObject({ code: "unauthorized", message: "device removed" });
    expect(await laptop.closed).toEqual({ code: CLOSE_CODES.unauthorized, reason: "device removed" });
    const withAccess = await api("GET", "/v1/devices", { token: bob2.session.accessToken });
    expect(withAccess.status).toBe(401);
    expect(withAccess.json.error.code).toBe("unauthorized");
    expect((await api("POST", "/v1/tokens/refresh", { body: { refreshToken: bob2.session.refreshToken } })).status).toBe(401);
    const socketAgain = await connect(bob2);
    expect(socketAgain.first).toMatchObject({ type: "error", code: "unauthorized" });

    expect(await objectState(bob, 2)).toEqual({ devices: 0, inbox: 0, prekeys: 0 });
    expect(await deviceIds(bob)).toEqual([1]);
    const refresh = await env.DB.prepare("SELECT COUNT(*) AS n FROM refresh_tokens WHERE user_id = ? AND device_id = 2").bind(bob.session.userId).first<{ n: number }>();
    expect(refresh!.n).toBe(0);
    expect((await api("GET", "/v1/devices", { token: bob.session.accessToken })).json.devices.map((d: { deviceId: number }) => d.deviceId)).toEqual([1]);

    const stale = await a.request({ type: "send", id: "after-removal", to: bob.session.userId, messages: addressTo([bob, bob2], "hi") });
    expect(stale).toMatchObject({ type: "error", code: "mismatched_devices", mismatches: [{ userId: bob.session.userId, extra: [2] }] });
  });

  it("lets a linked device remove itself but no other device, and nobody remove device 1", async () => {
    const primary = await registerUser();
    const second = await linkDevice(primary);
    await linkDevice(primary);

    for (const [who, target] of [
      [second, 3],
      [second, 1],
      [primary, 1],
    ] as const) {
      const res = await api("DELETE", `/v1/devices/${target}`, { token: who.session.accessToken });
      expect(res.status, `device ${who.session.deviceId} removing ${target}`).toBe(403);
      expect(res.json.error.code).toBe("forbidden");
    }
    expect(await deviceIds(primary)).toEqual([1, 2, 3]);

    expect((await api("DELETE", "/v1/devices/2", { token: second.session.accessToken })).status).toBe(204);
    expect((await api("GET", "/v1/devices", { token: second.session.accessToken })).status).toBe(401);
    expect(await deviceIds(primary)).toEqual([1, 3]);
  });

  it("removes only devices of the caller's own account", async () => {
    const alice = await registerUser();
    const bob = await registerUser();
    const bob2 = await linkDevice(bob);

    const res = await api("DELETE", "/v1/devices/2", { token: alice.session.accessToken });
    expect(res.status).toBe(404);
    expect(res.json.error.code).toBe("not_found");
    expect(await deviceIds(bob)).toEqual([1, 2]);
    expect((await api("GET", "/v1/devices", { token: bob2.session.accessToken })).status).toBe(200);
    const { first } = await connect(bob2);
    expect(first).toMatchObject({ type: "ready", userId: bob.session.userId, deviceId: 2 });
  });

  it("answers 404 for a device id the account does not have, and 401 without a token", async () => {
    const primary = await registerUser();
    const missing = await api("DELETE", "/v1/devices/4", { token: primary.session.accessToken });
    expect(missing.status).toBe(404);
    expect(missing.json.error.code).toBe("not_found");
    const anonymous = await api("DELETE", "/v1/devices/1");
    expect(anonymous.status).toBe(401);
    expect(await deviceIds(primary)).toEqual([1]);
  });
});
