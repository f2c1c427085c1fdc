/**
 * The connection manager against a scripted WebSocket: heartbeats, jittered exponential backoff, token
 * refresh on 4401, stopping for good on 4409 or a sign-out, and requests that fail over on a close.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { Connection, type ConnectionOptions, type ConnectionState } from "../../../client/transport/connection";
import { backoffDelay } from "../../../client/transport/backoff";
import { ConnectionClosedError, LoggedOutError } from "../../../client/errors";
import { decodeContent, encodeContent } from "../../../client/messages/content";

/** A WebSocket the test drives: it records what the client sends and lets the test answer or close. */
class ScriptedSocket {
  static all: ScriptedSocket[] = [];
  readyState = 1;
  sent: string[] = [];
  onmessage: ((e: { data: unknown }) => void) | null = null;
  onclose: ((e: { code: number; reason: string }) => void) | null = null;
  onerror: (() => void) | null = null;
  constructor(
    readonly url: string,
    readonly protocols: string[],
  ) {
    ScriptedSocket.all.push(this);
  }
  send(data: string) {
    this.sent.push(data);
  }
  close() {
    this.readyState = 3;
  }
  frame(frame: unknown) {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }
  serverClose(code: number, reason = "") {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
}

const timing = { reconnectBaseMs: 100, reconnectMaxMs: 1_000, heartbeatIntervalMs: 1_000, heartbeatTimeoutMs: 500 };
const ready = { type: "ready", userId: "u", deviceId: 1, pending: 0 };

function connection(overrides: Partial<ConnectionOptions> = {}) {
  const states: ConnectionState[] = [];
  const fatal: Error[] = [];
  let token = 0;
  const refreshed: string[] = [];
  const c = new Connection({
    url: "http://relay.test",
    WebSocket: ScriptedSocket as unknown as ConnectionOptions["WebSocket"],
    accessToken: async () => `token-${token}`,
    refreshToken: async (rejected) => {
      refreshed.push(rejected);
      token++;
    },
    onReady: () => undefined,
    onDeliver: () => undefined,
    onReceipts: () => undefined,
    onOther: () => undefined,
    onState: (s) => states.push(s),
    onFatal: (e) => fatal.push(e),
    timing,
    ...overrides,
  });
  return { c, states, fatal, refreshed };
}

const last = () => ScriptedSocket.all[ScriptedSocket.all.length - 1]!;

afterEach(() => {
  vi.useRealTimers();
  ScriptedSocket.all = [];
});

describe("Connection", () => {
  it("connects with the token in the subprotocols, pings after a quiet interval and gives a silent socket up", async () => {
    vi.useFakeTimers();
    const { c } = connection();
    c.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(last().url).toBe("ws://relay.test/v1/connect");
    expect(last().protocols).toEqual(["relay.v1", "bearer.token-0"]);
    last().frame(ready);
    expect(c.isOpen).toBe(true);
    await vi.advanceTimersByTimeAsync(1_300);
    expect(last().sent).toEqual(['{"type":"ping"}']);
    last().frame({ type: "pong" });
    await vi.advanceTimersByTimeAsync(1_300);
    expect(last().sent).toEqual(['{"type":"ping"}', '{"type":"ping"}']);
    const first = last();
    await vi.advanceTimersByTimeAsync(1_000); // no pong: dead
    expect(c.isOpen).toBe(false);
    await vi.advanceTimersByTimeAsync(200);
    expect(last()).not.toBe(first);
    c.stop();
  });

  it("reconnects with jittered exponential backoff and resets it once ready", async () => {
    vi.useFakeTimers();
    vi.spyOn(Math, "random").mockReturnValue(0.999);
    const { c } = connection();
    c.start();
    await vi.advanceTimersByTimeAsync(0);
    const at: number[] = [];
    for (let i = 0; i < 5; i++) {
      const before = ScriptedSocket.all.length;
      last().serverClose(1006);
      const t0 = Date.now();
      while (ScriptedSocket.all.length === before) await vi.advanceTimersByTimeAsync(10);
      at.push(Date.now() - t0);
    }
    expect(at).toEqual([100, 200, 400, 800, 1000]);
    last().frame(ready);
    const before = ScriptedSocket.all.length;
    last().serverClose(1006);
    const t0 = Date.now();
    while (ScriptedSocket.all.length === before) await vi.advanceTimersByTimeAsync(10);
    expect(Date.now() - t0).toBe(100);
    c.stop();
    vi.mocked(Math.random).mockRestore();
    expect(new Set(Array.from({ length: 50 }, () => backoffDelay(3, 100, 1000))).size).toBeGreaterThan(10);
    expect(Array.from({ length: 200 }, () => backoffDelay(10, 100, 1000)).every((d) => d >= 0 && d < 1000)).toBe(true);
  });

  it("refreshes the token after a 4401 close; stops for good on 4409 and when signed out", async () => {
    vi.useFakeTimers();
    const { c, refreshed, fatal, states } = connection();
    c.start();
    await vi.advanceTimersByTimeAsync(0);
    last().serverClose(4401, "token expired");
    await vi.advanceTimersByTimeAsync(200);
    expect(refreshed).toEqual(["token-0"]);
    expect(last().protocols).toContain("bearer.token-1");
    last().frame(ready);
    last().serverClose(4409, "replaced");
    await vi.advanceTimersByTimeAsync(2_000);
    expect(states.at(-1)).toBe("stopped");
    expect(fatal[0]).toBeInstanceOf(ConnectionClosedError);
    expect(ScriptedSocket.all).toHaveLength(2);

    const signedOut = connection({ refreshToken: async () => Promise.reject(new LoggedOutError()) });
    signedOut.c.start();
    await vi.advanceTimersByTimeAsync(0);
    last().serverClose(4401, "device removed");
    await vi.advanceTimersByTimeAsync(2_000);
    expect(signedOut.fatal[0]).toBeInstanceOf(LoggedOutError);
    expect(ScriptedSocket.all).toHaveLength(3);
  });

  it("acts on the error frame that precedes a 4401 or 4409 close, without waiting for the close handshake", async () => {
    vi.useFakeTimers();
    const { c, refreshed, fatal } = connection();
    c.start();
    await vi.advanceTimersByTimeAsync(0);
    last().frame(ready);
    last().frame({ type: "error", code: "unauthorized", message: "session revoked" });
    expect(c.isOpen).toBe(false);
    await vi.advanceTimersByTimeAsync(200);
    expect(refreshed).toEqual(["token-0"]);
    expect(ScriptedSocket.all).toHaveLength(2);
    last().frame(ready);
    last().frame({ type: "error", code: "conflict", message: "replaced by a newer connection" });
    await vi.advanceTimersByTimeAsync(2_000);
    expect(fatal[0]).toBeInstanceOf(ConnectionClosedError);
    expect(ScriptedSocket.all).toHaveLength(2);
  });

  it("answers requests by id and fails them over when the socket closes; acks only on the socket that delivered", async () => {
    vi.useFakeTimers();
    const { c } = connection();
    c.start();
    await vi.advanceTimersByTimeAsync(0);
    await expect(c.request({ type: "read", id: "r0", to: "u", refs: [{ device: 1, id: "x" }] })).rejects.toBeInstanceOf(ConnectionClosedError);
    last().frame(ready);
    const answered = c.request({ type: "read", id: "r1", to: "u", refs: [{ device: 1, id: "x" }] });
    last().frame({ type: "sent", id: "r1", ts: 1 });
    expect(await answered).toEqual({ type: "sent", id: "r1", ts: 1 });
    const generation = c.generation;
    const lost = c.request({ type: "read", id: "r2", to: "u", refs: [{ device: 1, id: "x" }] });
    last().serverClose(1006);
    await expect(lost).rejects.toBeInstanceOf(ConnectionClosedError);
    await vi.advanceTimersByTimeAsync(200);
    last().frame(ready);
    expect(c.ack(generation, 5)).toBe(false);
    expect(c.ack(c.generation, 5)).toBe(true);
    expect(last().sent).toEqual(['{"type":"ack","upTo":5}']);
    c.stop();
  });
});

describe("message content", () => {
  it("pads to multiples of 160 bytes and round-trips text, bytes and the sync destination", () => {
    const text = encodeContent({ body: { text: "hi" }, sentAt: 1 });
    expect(text.length).toBe(160);
    expect(decodeContent(text)).toEqual({ body: { text: "hi" }, sentAt: 1 });
    const bytes = new Uint8Array(200).fill(7);
    const padded = encodeContent({ body: { bytes }, sentAt: 2, to: "bob" });
    expect(padded.length % 160).toBe(0);
    expect(decodeContent(padded)).toEqual({ body: { bytes }, sentAt: 2, to: "bob" });
    expect(() => decodeContent(new Uint8Array(160))).toThrow(/padding/);
  });
});
