/** `GET /v1/connect`: who may open a socket, how the token is carried, and whose inbox it opens. */
import { env, exports } from "cloudflare:workers";
import { SignJWT, importPKCS8 } from "jose";
import { describe, expect, it } from "vitest";
import { CONNECT_HEADERS } from "../../../durable-objects/user";
import { CLOSE_CODES, type MessageEnvelope } from "../../../src/protocol/frames";
import { addressTo, api, connect, registerUser, TestSocket } from "../support/relay";

const now = () => Math.floor(Date.now() / 1000);

/** A token with the claims of `session` but signed by `key` and expiring at `exp`. */
async function craftToken(claims: { userId: string; deviceId: number }, key: CryptoKey, exp: number) {
  const family = "any-family";
  return new SignJWT({ dev: claims.deviceId, fam: family })
    .setProtectedHeader({ alg: "EdDSA", typ: "JWT" })
    .setSubject(claims.userId)
    .setIssuer("relay")
    .setIssuedAt(exp - 900)
    .setExpirationTime(exp)
    .sign(key);
}

/** Opens /v1/connect with exactly these headers (plus the upgrade) and keeps the raw response. */
async function openRaw(headers: Record<string, string>) {
  const response = await exports.default.fetch(new Request("https://relay.test/v1/connect", { headers: { upgrade: "websocket", ...headers } }));
  expect(response.status).toBe(101);
  return { response, socket: new TestSocket(response.webSocket!) };
}

describe("refused connections", () => {
  it("answer a missing, malformed, foreign or expired token with an unauthorized frame and close 4401", async () => {
    const alice = await registerUser();
    const foreign = (await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"])) as CryptoKeyPair;
    const ownKey = await importPKCS8(env.TOKEN_SIGNING_KEY, "EdDSA");
    const cases: [string, string | undefined, string][] = [
      ["no token", undefined, "missing bearer access token"],
      ["garbage", "garbage.token.value", "access token malformed"],
      ["another key", await craftToken(alice.session, foreign.privateKey, now() + 600), "access token signature invalid"],
      ["expired", await craftToken(alice.session, ownKey, now() - 60), "access token expired"],
    ];
    for (const [what, token, reason] of cases) {
      const { socket, first } = await connect({ token });
      expect(first, what).toEqual({ type: "error", code: "unauthorized", message: reason });
      expect(await socket.closed, what).toEqual({ code: CLOSE_CODES.unauthorized, reason });
    }
  });

  it("answers a refused subprotocol token the same way, selecting relay.v1", async () => {
    const { response, socket } = await openRaw({ "sec-websocket-protocol": "relay.v1, bearer.not-a-jwt" });
    expect(response.headers.get("sec-websocket-protocol")).toBe("relay.v1");
    expect(await socket.next("error")).toMatchObject({ code: "unauthorized", message: "access token malformed" });
    expect(await socket.closed).toEqual({ code: CLOSE_CODES.unauthorized, reason: "access token malformed" });
  });

  it("answers a plain GET without an upgrade with 426 and a JSON error", async () => {
    const alice = await registerUser();
    for (const token of [undefined, alice.session.accessToken]) {
      const res = await api("GET", "/v1/connect", { token });
      expect(res.status).toBe(426);
      expect(res.json).toEqual({ error: { code: "bad_request", message: expect.stringContaining("WebSocket upgrade") } });
    }
  });
});

describe("accepted connections", () => {
  it("take the token from the subprotocol list and select relay.v1", async () => {
    const alice = await registerUser();
    const { response, socket } = await openRaw({ "sec-websocket-protocol": `relay.v1, bearer.${alice.session.accessToken}` });
    expect(response.headers.get("sec-websocket-protocol")).toBe("relay.v1");
    expect(await socket.next("ready")).toEqual({ type: "ready", userId: alice.session.userId, deviceId: 1, pending: 0 });
  });

  it("close an older connection of the same device with 4409 when a newer one opens", async () => {
    const alice = await registerUser();
    const bob = await registerUser();
    const { socket: older } = await connect(bob);
    const { socket: newer, first } = await connect(bob);
    expect(first).toMatchObject({ type: "ready", deviceId: 1 });
    expect(await older.next("error")).toMatchObject({ code: "conflict" });
    expect(await older.closed).toEqual({ code: CLOSE_CODES.replaced, reason: "replaced by a newer connection" });

    const { socket: a } = await connect(alice);
    await a.request({ type: "send", id: "to-newer", to: bob.session.userId, messages: addressTo([bob], "hi") });
    expect((await newer.receive(1)).map((e) => (e as MessageEnvelope).id)).toEqual(["to-newer"]);
  });

  it("open only the token's own user's inbox, whatever else the request claims", async () => {
    const alice = await registerUser();
    const bob = await registerUser();
    const carol = await registerUser();
    const { socket: a } = await openRaw({
      authorization: `Bearer ${alice.session.accessToken}`,
      [CONNECT_HEADERS.user]: bob.session.userId,
      [CONNECT_HEADERS.device]: "1",
    });
    expect(await a.next("ready")).toEqual({ type: "ready", userId: alice.session.userId, deviceId: 1, pending: 0 });

    const { socket: c } = await connect(carol);
    expect(await c.request({ type: "send", id: "for-bob", to: bob.session.userId, messages: addressTo([bob], "bob only") })).toMatchObject({ type: "sent" });
    expect(await c.request({ type: "send", id: "for-alice", to: alice.session.userId, messages: addressTo([alice], "alice") })).toMatchObject({ type: "sent" });

    // Alice's socket gets her message, and nothing was queued on it before (or instead of) it.
    const delivered = (await a.receive(1)) as MessageEnvelope[];
    expect(delivered.map((e) => e.id)).toEqual(["for-alice"]);
    expect(a.frames).toEqual([]);
    const { socket: b, first } = await connect(bob);
    expect(first).toMatchObject({ type: "ready", userId: bob.session.userId, pending: 1 });
    expect(((await b.receive(1)) as MessageEnvelope[]).map((e) => e.id)).toEqual(["for-bob"]);
  });
});
