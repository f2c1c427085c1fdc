/**
 * Test fixtures built through the public API, the way a client uses it: HTTP through the Worker's own
 * fetch handler, WebSockets through the real upgrade path, codes through the capturing SMS provider.
 */
import { exports } from "cloudflare:workers";
import { capturedSms } from "../../../src/auth/sms";
import type { ClientFrame, Envelope, OutgoingMessage, ServerFrame } from "../../../src/protocol/frames";
import type { DeviceKeysBody } from "../../support/device-keys";
import { deviceKeys } from "../../support/device-keys";
import type { Session } from "../../../src/protocol/http";
import type { IdentityKeyPair } from "../../../src/protocol/keys";

const ORIGIN = "https://relay.test";
let phoneCounter = 0;

/** A fresh valid phone number, unique within a test file. */
export function newPhone(): string {
  phoneCounter += 1;
  return `+1415555${String(1000 + phoneCounter).padStart(4, "0")}`;
}

/** Calls the Worker. `body` is sent as JSON; `token` as a bearer token. */
export async function api(method: string, path: string, options: { body?: unknown; token?: string; headers?: Record<string, string> } = {}) {
  const headers: Record<string, string> = { ...options.headers };
  if (options.body !== undefined) headers["content-type"] = "application/json";
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  const response = await exports.default.fetch(
    new Request(ORIGIN + path, {
      method,
      headers,
      body: options.body === undefined ? undefined : typeof options.body === "string" ? options.body : JSON.stringify(options.body),
    }),
  );
  const text = await response.text();
  return { status: response.status, headers: response.headers, json: text ? JSON.parse(text) : undefined };
}

/** Requests a code for `phone` and returns the one the capturing SMS provider received. */
export async function requestCode(phone: string): Promise<string> {
  const before = capturedSms.length;
  // Each test user registers "from its own address", as real users do, so per-IP limits stay out of the way.
  const res = await api("POST", "/v1/registration/code", { body: { phone }, headers: { "cf-connecting-ip": `203.0.113.${phoneCounter % 250}` } });
  if (res.status !== 202) throw new Error(`code request failed: ${res.status} ${JSON.stringify(res.json)}`);
  const sms = capturedSms.slice(before).find((m) => m.to === phone);
  const code = sms && /(\d{6})/.exec(sms.text)?.[1];
  if (!code) throw new Error("no code captured");
  return code;
}

export interface TestDevice {
  session: Session;
  keys: DeviceKeysBody;
  phone: string;
  /** The device's identity key pair (tests that sign as the device, e.g. channel posts). */
  identity?: IdentityKeyPair;
}

/** Registers a new user (primary device) through code request and verification. */
export async function registerUser(options: { phone?: string; preKeys?: number; kyberPreKeys?: number } = {}): Promise<TestDevice> {
  const phone = options.phone ?? newPhone();
  const code = await requestCode(phone);
  const { keys, identity } = deviceKeys({ preKeys: options.preKeys ?? 3, kyberPreKeys: options.kyberPreKeys ?? 2 });
  const res = await api("POST", "/v1/registration/verify", { body: { phone, code, device: keys } });
  if (res.status !== 201 && res.status !== 200) throw new Error(`verify failed: ${res.status} ${JSON.stringify(res.json)}`);
  return { session: res.json as Session, keys, phone, identity };
}

/** Links a new device to `primary`'s account. */
export async function linkDevice(primary: TestDevice): Promise<TestDevice> {
  const codeRes = await api("POST", "/v1/devices/link-codes", { token: primary.session.accessToken });
  const { keys, identity } = deviceKeys({ preKeys: 2, kyberPreKeys: 1 });
  const res = await api("POST", "/v1/devices/link", { body: { code: codeRes.json.code, device: keys } });
  if (res.status !== 201) throw new Error(`link failed: ${res.status} ${JSON.stringify(res.json)}`);
  return { session: res.json as Session, keys, phone: primary.phone, identity };
}

/** A ciphertext stand-in: tests of the server only need opaque bytes. */
export function body(text: string): string {
  return btoa(text);
}

/** One outgoing message per device of `device`'s user, addressed as the server expects. */
export function addressTo(devices: TestDevice[], text: string, type: OutgoingMessage["type"] = 2): OutgoingMessage[] {
  return devices.map((d) => ({ device: d.session.deviceId, registrationId: d.keys.registrationId, type, body: body(text) }));
}

/** A connected test socket: frames are queued as they arrive; `next` waits for one without sleeping. */
export class TestSocket {
  readonly frames: ServerFrame[] = [];
  private waiters: { match: (f: ServerFrame) => boolean; resolve: (f: ServerFrame) => void }[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;

  constructor(readonly ws: WebSocket) {
    this.closed = new Promise((resolve) => ws.addEventListener("close", (e) => resolve({ code: e.code, reason: e.reason })));
    ws.addEventListener("message", (e) => {
      const frame = JSON.parse(e.data as string) as ServerFrame;
      const waiter = this.waiters.findIndex((w) => w.match(frame));
      if (waiter >= 0) this.waiters.splice(waiter, 1)[0]!.resolve(frame);
      else this.frames.push(frame);
    });
    ws.accept();
  }

  send(frame: ClientFrame | Record<string, unknown> | string): void {
    this.ws.send(typeof frame === "string" ? frame : JSON.stringify(frame));
  }

  /** The next frame (queued or future) matching `test`. */
  nextWhere(test: (f: ServerFrame) => boolean): Promise<ServerFrame> {
    const queued = this.frames.findIndex(test);
    if (queued >= 0) return Promise.resolve(this.frames.splice(queued, 1)[0]!);
    return new Promise((resolve) => this.waiters.push({ match: test, resolve }));
  }

  /** The next frame (queued or future) of `type` matching `match`. */
  next<T extends ServerFrame["type"]>(type: T, match: (f: Extract<ServerFrame, { type: T }>) => boolean = () => true) {
    return this.nextWhere((f) => f.type === type && match(f as Extract<ServerFrame, { type: T }>)) as Promise<
      Extract<ServerFrame, { type: T }>
    >;
  }

  /** Collects delivered envelopes until `count` have arrived, acknowledging each page (unless `ack` is false). */
  async receive(count: number, ack = true): Promise<Envelope[]> {
    const envelopes: Envelope[] = [];
    while (envelopes.length < count) {
      const frame = await this.next("deliver");
      envelopes.push(...frame.envelopes);
      if (ack) this.send({ type: "ack", upTo: frame.envelopes[frame.envelopes.length - 1]!.seq });
    }
    return envelopes;
  }

  /** Sends and waits for the matching `sent` or `error` frame. */
  async request(frame: ClientFrame & { id: string }): Promise<Extract<ServerFrame, { type: "sent" | "error" }>> {
    const answer = this.nextWhere((f) => (f.type === "sent" || f.type === "error") && f.id === frame.id);
    this.send(frame);
    return answer as Promise<Extract<ServerFrame, { type: "sent" | "error" }>>;
  }

  close(): void {
    this.ws.close(1000, "done");
  }
}

/** Opens a WebSocket as `device` (or with a raw `token`/`protocols`), and waits for its first frame. */
export async function connect(device: TestDevice | { token?: string; protocols?: string }): Promise<{ socket: TestSocket; first: ServerFrame }> {
  const headers: Record<string, string> = { upgrade: "websocket" };
  const token = "session" in device ? device.session.accessToken : device.token;
  if ("protocols" in device && device.protocols) headers["sec-websocket-protocol"] = device.protocols;
  else if (token) headers.authorization = `Bearer ${token}`;
  const response = await exports.default.fetch(new Request(`${ORIGIN}/v1/connect`, { headers }));
  if (!response.webSocket) throw new Error(`no websocket: ${response.status} ${await response.text()}`);
  const socket = new TestSocket(response.webSocket);
  const first = await new Promise<ServerFrame>((resolve) => {
    const queued = socket.frames.shift();
    if (queued) resolve(queued);
    else socket.ws.addEventListener("message", () => resolve(socket.frames.shift()!), { once: true });
  });
  return { socket, first };
}
