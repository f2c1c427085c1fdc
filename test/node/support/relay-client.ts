/**
 * A minimal Relay client for Node end-to-end tests: HTTP over fetch, the device socket over `ws`.
 * Not the SDK: no crypto and no store, only the wire. Runs under Node's type stripping as well as in
 * vitest, so it uses erasable TypeScript only (type-only imports, no enums, no parameter properties).
 *
 * @example
 * const alice = await registerDevice(url, "+14155550101", keys, (phone) => codeFromSms(phone));
 * const socket = await connectDevice(url, alice);
 * await socket.request({ type: "send", id: "m1", to: bob.userId, messages });
 * const [envelope] = await bobSocket.receive(1);
 */
import WebSocket from "ws";
import type { ClientFrame, Envelope, ServerFrame } from "../../../src/protocol/frames";
import type { DeviceBundle, DeviceKeys as DeviceKeysFromProtocol, PreKeyBundleResponse, Session } from "../../../src/protocol/http";

/** A device's public keys as registration sends them (the server's schema; byte fields are standard padded base64). */
export type DeviceKeysBody = DeviceKeysFromProtocol;

/** A registered device: its session and the registration id senders must address it with. */
export interface Device {
  session: Session;
  registrationId: number;
  phone: string;
}

export interface ApiResponse<T = unknown> {
  status: number;
  json: T;
}

/** Where a verification code comes from (the tests' Twilio stand-in). */
export type CodeSource = (phone: string) => Promise<string>;

export class RelayHttpError extends Error {
  status: number;
  body: unknown;

  constructor(what: string, status: number, body: unknown) {
    super(`${what}: HTTP ${status} ${JSON.stringify(body)}`);
    this.name = "RelayHttpError";
    this.status = status;
    this.body = body;
  }
}

/** Calls the HTTP API; `body` goes as JSON, `token` as a bearer token. */
export async function api<T = unknown>(
  baseUrl: string,
  method: string,
  path: string,
  options: { body?: unknown; token?: string } = {},
): Promise<ApiResponse<T>> {
  const headers: Record<string, string> = {};
  if (options.body !== undefined) headers["content-type"] = "application/json";
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  const response = await fetch(baseUrl + path, {
    method,
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await response.text();
  return { status: response.status, json: (text ? JSON.parse(text) : undefined) as T };
}

/** Registers a new account (primary device 1): requests a code, reads it from `codeFor`, verifies it with `keys`. */
export async function registerDevice(
  baseUrl: string,
  phone: string,
  keys: DeviceKeysBody,
  codeFor: CodeSource,
  name?: string,
): Promise<Device> {
  const requested = await api(baseUrl, "POST", "/v1/registration/code", { body: { phone } });
  if (requested.status !== 202) throw new RelayHttpError("code request failed", requested.status, requested.json);
  const code = await codeFor(phone);
  const verified = await api<Session>(baseUrl, "POST", "/v1/registration/verify", {
    body: { phone, code, device: keys, ...(name && { name }) },
  });
  if (verified.status !== 201 && verified.status !== 200) throw new RelayHttpError("verify failed", verified.status, verified.json);
  return { session: verified.json, registrationId: keys.registrationId, phone };
}

/** Links a new device with `keys` to `primary`'s account through a link code. */
export async function linkDevice(baseUrl: string, primary: Device, keys: DeviceKeysBody, name?: string): Promise<Device> {
  const code = await api<{ code: string }>(baseUrl, "POST", "/v1/devices/link-codes", { token: primary.session.accessToken });
  if (code.status !== 201) throw new RelayHttpError("link code failed", code.status, code.json);
  const linked = await api<Session>(baseUrl, "POST", "/v1/devices/link", {
    body: { code: code.json.code, device: keys, ...(name && { name }) },
  });
  if (linked.status !== 201) throw new RelayHttpError("link failed", linked.status, linked.json);
  return { session: linked.json, registrationId: keys.registrationId, phone: primary.phone };
}

/** Another user's prekey bundle (every device, claiming one-time keys), as `device` sees it. */
export async function fetchBundle(baseUrl: string, device: Device, userId: string): Promise<PreKeyBundleResponse> {
  const res = await api<PreKeyBundleResponse>(baseUrl, "GET", `/v1/keys/${userId}`, { token: device.session.accessToken });
  if (res.status !== 200) throw new RelayHttpError("bundle fetch failed", res.status, res.json);
  return res.json;
}

/** One ciphertext per device of a bundle (or device list), addressed as the server expects. */
export function addressAll(devices: Pick<DeviceBundle, "deviceId" | "registrationId">[], body: string, type: 2 | 3 | 7 | 8 = 2) {
  return devices.map((d) => ({ device: d.deviceId, registrationId: d.registrationId, type, body }));
}

/** A server frame as it arrived: `at` counts every frame the socket received, from 1. */
export interface Arrival<F extends ServerFrame = ServerFrame> {
  frame: F;
  at: number;
}

type FrameOf<T extends ServerFrame["type"]> = Extract<ServerFrame, { type: T }>;

interface Waiter {
  test(frame: ServerFrame): boolean;
  resolve(arrival: Arrival): void;
  reject(error: Error): void;
}

const DEFAULT_WAIT_MS = 15_000;

/** A device's WebSocket: frames queue up as they arrive; `next` waits for one (event-driven, bounded). */
export class RelaySocket {
  readonly ws: WebSocket;
  /** Frames that arrived and no waiter took yet, oldest first. */
  readonly queue: Arrival[] = [];
  /** Resolves when the socket closes. */
  readonly closed: Promise<{ code: number; reason: string }>;
  private waiters: Waiter[] = [];
  private arrivals = 0;
  private closeInfo: { code: number; reason: string } | undefined;

  constructor(ws: WebSocket) {
    this.ws = ws;
    this.closed = new Promise((resolve) => {
      ws.on("close", (code, reason) => {
        this.closeInfo = { code, reason: reason.toString("utf8") };
        for (const waiter of this.waiters.splice(0)) {
          waiter.reject(new Error(`socket closed (${code} ${this.closeInfo.reason}) while waiting for a frame`));
        }
        resolve(this.closeInfo);
      });
    });
    ws.on("message", (data) => {
      const arrival: Arrival = { frame: JSON.parse(data.toString()) as ServerFrame, at: ++this.arrivals };
      const index = this.waiters.findIndex((w) => w.test(arrival.frame));
      if (index >= 0) this.waiters.splice(index, 1)[0]!.resolve(arrival);
      else this.queue.push(arrival);
    });
  }

  /** Sends a frame (or raw text). */
  send(frame: ClientFrame | Record<string, unknown> | string): void {
    this.ws.send(typeof frame === "string" ? frame : JSON.stringify(frame));
  }

  /** The next frame of `type` (already queued or yet to come) for which `match` holds; rejects after `timeoutMs` or on close. */
  nextArrival<T extends ServerFrame["type"]>(
    type: T | readonly T[],
    match: (frame: FrameOf<T>) => boolean = () => true,
    timeoutMs = DEFAULT_WAIT_MS,
  ): Promise<Arrival<FrameOf<T>>> {
    const types: readonly string[] = Array.isArray(type) ? type : [type];
    const test = (f: ServerFrame) => types.includes(f.type) && match(f as FrameOf<T>);
    const queued = this.queue.findIndex((a) => test(a.frame));
    if (queued >= 0) return Promise.resolve(this.queue.splice(queued, 1)[0] as Arrival<FrameOf<T>>);
    if (this.closeInfo) return Promise.reject(new Error(`socket closed (${this.closeInfo.code} ${this.closeInfo.reason})`));
    return new Promise<Arrival<FrameOf<T>>>((resolve, reject) => {
      const waiter: Waiter = {
        test,
        resolve: (arrival) => {
          clearTimeout(timer);
          resolve(arrival as Arrival<FrameOf<T>>);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`no ${types.join("/")} frame within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  /** Like {@link nextArrival}, the frame only. */
  async next<T extends ServerFrame["type"]>(
    type: T | readonly T[],
    match?: (frame: FrameOf<T>) => boolean,
    timeoutMs?: number,
  ): Promise<FrameOf<T>> {
    return (await this.nextArrival(type, match, timeoutMs)).frame;
  }

  /** Acknowledges every envelope up to `upTo`. */
  ack(upTo: number): void {
    this.send({ type: "ack", upTo });
  }

  /** Collects `count` delivered envelopes, acknowledging each page as it arrives (unless `ack` is false). */
  async receive(count: number, options: { ack?: boolean; timeoutMs?: number } = {}): Promise<Envelope[]> {
    const envelopes: Envelope[] = [];
    while (envelopes.length < count) {
      const frame = await this.next("deliver", undefined, options.timeoutMs);
      envelopes.push(...frame.envelopes);
      if (options.ack !== false) this.ack(frame.envelopes[frame.envelopes.length - 1]!.seq);
    }
    return envelopes;
  }

  /** Sends a `send` or `read` frame and waits for its `sent` or `error` answer. */
  async request(
    frame: ClientFrame & { id: string },
    timeoutMs?: number,
  ): Promise<Arrival<FrameOf<"sent" | "error">>> {
    const answer = this.nextArrival(["sent", "error"], (f) => f.id === frame.id, timeoutMs);
    this.send(frame);
    return answer;
  }

  /** Closes the socket and waits until it is closed. */
  async close(code = 1000, reason = "done"): Promise<void> {
    if (!this.closeInfo) this.ws.close(code, reason);
    await this.closed;
  }
}

/**
 * Opens `device`'s WebSocket with `Authorization: Bearer` and waits for its first frame (`ready`, or the
 * `error` that precedes a refusal).
 */
export async function connectDevice(
  baseUrl: string,
  device: Device | { token: string },
  timeoutMs = DEFAULT_WAIT_MS,
): Promise<{ socket: RelaySocket; first: ServerFrame }> {
  const token = "session" in device ? device.session.accessToken : device.token;
  const ws = new WebSocket(`${baseUrl.replace(/^http/, "ws")}/v1/connect`, {
    headers: { authorization: `Bearer ${token}` },
    handshakeTimeout: timeoutMs,
  });
  const socket = new RelaySocket(ws);
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
    ws.once("unexpected-response", (req, res) => {
      req.destroy();
      reject(new Error(`upgrade refused: HTTP ${res.statusCode}`));
    });
  });
  const first = await socket.next(["ready", "error"], undefined, timeoutMs);
  return { socket, first };
}
