/** Refresh-token rotation, and reuse of a spent refresh token treated as theft. */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { newOpaqueToken, sha256Base64Url } from "../../../src/auth/tokens";
import { CLOSE_CODES } from "../../../src/protocol/frames";
import type { Session } from "../../../src/protocol/http";
import { api, connect, linkDevice, registerUser } from "../support/relay";

const refresh = (refreshToken: string) => api("POST", "/v1/tokens/refresh", { body: { refreshToken } });
const devicesWith = (accessToken: string) => api("GET", "/v1/devices", { token: accessToken });

async function expectUnauthorized(res: { status: number; json: { error: { code: string; message: string } } }, message?: string) {
  expect(res.status).toBe(401);
  expect(res.json.error.code).toBe("unauthorized");
  if (message) expect(res.json.error.message).toBe(message);
}

describe("refreshing a session", () => {
  it("rotates the refresh token and issues a working access token", async () => {
    const alice = await registerUser();
    const first = await refresh(alice.session.refreshToken);
    expect(first.status).toBe(200);
    const rotated = first.json as Session;
    expect(rotated).toMatchObject({ userId: alice.session.userId, deviceId: 1 });
    expect(rotated.refreshToken).not.toBe(alice.session.refreshToken);
    expect(rotated.accessTokenExpiresAt).toBeGreaterThan(Date.now());
    expect((await devicesWith(rotated.accessToken)).status).toBe(200);

    const second = await refresh(rotated.refreshToken);
    expect(second.status).toBe(200);
    expect((await devicesWith((second.json as Session).accessToken)).status).toBe(200);
    const stored = await env.DB.prepare("SELECT token_hash FROM refresh_tokens WHERE user_id = ?").bind(alice.session.userId).all<{ token_hash: string }>();
    expect(stored.results.map((r) => r.token_hash)).toContain(await sha256Base64Url((second.json as Session).refreshToken));
    expect(JSON.stringify(stored.results)).not.toContain((second.json as Session).refreshToken);
  });

  it("treats reuse of a spent refresh token as theft: the device's whole session is revoked", async () => {
    const bob = await registerUser();
    const laptop = await linkDevice(bob);
    const rotated = (await refresh(laptop.session.refreshToken)).json as Session;
    const newest = (await refresh(rotated.refreshToken)).json as Session;
    const { socket } = await connect({ ...laptop, session: newest });
    const { socket: phoneSocket } = await connect(bob);

    await expectUnauthorized(await refresh(laptop.session.refreshToken), "refresh token reuse detected: the device was signed out");

    expect(await socket.next("error")).toMatchObject({ code: "unauthorized", message: "session revoked" });
    expect(await socket.closed).toEqual({ code: CLOSE_CODES.unauthorized, reason: "session revoked" });
    await expectUnauthorized(await refresh(newest.refreshToken));
    for (const token of [newest.accessToken, rotated.accessToken, laptop.session.accessToken]) {
      await expectUnauthorized(await devicesWith(token), "device removed or session revoked");
    }
    expect((await connect({ ...laptop, session: newest })).first).toMatchObject({ type: "error", code: "unauthorized" });

    // Only the device whose token was stolen is signed out; the account's other device is untouched.
    expect((await devicesWith(bob.session.accessToken)).status).toBe(200);
    expect((await refresh(bob.session.refreshToken)).status).toBe(200);
    phoneSocket.send({ type: "ping" });
    expect(await phoneSocket.next("pong")).toEqual({ type: "pong" });
  });

  it("answers exactly one of two concurrent refreshes with the same token, and treats the other as reuse", async () => {
    const alice = await registerUser();
    const answers = await Promise.all([refresh(alice.session.refreshToken), refresh(alice.session.refreshToken)]);
    expect(answers.map((a) => a.status).sort()).toEqual([200, 401]);
    const winner = answers.find((a) => a.status === 200)!.json as Session;
    await expectUnauthorized(await devicesWith(winner.accessToken));
    await expectUnauthorized(await refresh(winner.refreshToken));
  });

  it("refuses an unknown refresh token", async () => {
    await expectUnauthorized(await refresh(newOpaqueToken()), "unknown refresh token");
  });

  it("refuses an expired refresh token", async () => {
    const alice = await registerUser();
    await env.DB.prepare("UPDATE refresh_tokens SET expires_at = ? WHERE token_hash = ?")
      .bind(Date.now() - 1, await sha256Base64Url(alice.session.refreshToken))
      .run();
    await expectUnauthorized(await refresh(alice.session.refreshToken), "refresh token expired");
  });

  it("refuses a malformed body with 400", async () => {
    const res = await api("POST", "/v1/tokens/refresh", { body: { refreshToken: "short" } });
    expect(res.status).toBe(400);
    expect(res.json.error.code).toBe("bad_request");
  });
});

describe("signing out", () => {
  it("revokes the calling device's tokens and closes its socket, leaving the account's other devices signed in", async () => {
    const alice = await registerUser();
    const laptop = await linkDevice(alice);
    const { socket } = await connect(alice);
    const res = await api("POST", "/v1/tokens/revoke", { token: alice.session.accessToken });
    expect(res.status).toBe(204);
    expect((await socket.closed).code).toBe(CLOSE_CODES.unauthorized);
    await expectUnauthorized(await devicesWith(alice.session.accessToken));
    await expectUnauthorized(await refresh(alice.session.refreshToken));
    expect((await devicesWith(laptop.session.accessToken)).status).toBe(200);
  });

  it("needs a valid access token", async () => {
    await expectUnauthorized(await api("POST", "/v1/tokens/revoke"));
  });
});
