/**
 * One Relay user in its own Node process, driven by its parent over IPC: end-to-end tests run real
 * clients side by side, each with its own sockets and event loop. Run as `node client-process.ts <baseUrl>`
 * (Node's type stripping: erasable TypeScript only). The process holds the user's devices by name.
 *
 * Parent → child: `{ id, cmd, args }`; child → parent: `{ id, ok: true, result }` or `{ id, ok: false, error }`.
 * Verification codes: the child asks `{ codeFor: phone, req }` and the parent answers `{ codeReply: req, code }`.
 *
 * Commands: register {device, phone, keys} · link {device, from, keys} · bundle {device, userId} ·
 * connect {device} · send {device, frame} · read {device, frame} · receive {device, count} ·
 * until {device, match, timeoutMs?} · close {device} · exit.
 */
import type { Envelope, LiveReceipt, ServerFrame } from "../../../src/protocol/frames";
import {
  connectDevice,
  fetchBundle,
  linkDevice,
  registerDevice,
  type Device,
  type DeviceKeysBody,
  type RelaySocket,
} from "./relay-client.ts";

/** An envelope with the ordinal of the frame it arrived in (see `Arrival.at`). */
export interface ReceivedEnvelope {
  /** A receipt pushed live (`receipts` frame) has no sequence. */
  envelope: Envelope | LiveReceipt;
  at: number;
}

export interface ClientCommand {
  id: number;
  cmd: string;
  args: Record<string, unknown>;
}

interface DeviceState {
  device: Device;
  socket?: RelaySocket;
  /** Envelopes received (and acknowledged) but not yet handed to the parent. */
  inbox: ReceivedEnvelope[];
}

const baseUrl = process.argv[2];
if (!baseUrl || !process.send) {
  console.error("usage: node client-process.ts <baseUrl>  (spawned with an IPC channel)");
  process.exit(2);
}

const devices = new Map<string, DeviceState>();
const codeRequests = new Map<number, (code: string) => void>();
let codeRequestCounter = 0;

function reply(message: unknown): void {
  process.send!(message);
}

function askCode(phone: string): Promise<string> {
  const req = ++codeRequestCounter;
  return new Promise((resolve) => {
    codeRequests.set(req, resolve);
    reply({ codeFor: phone, req });
  });
}

function state(name: unknown): DeviceState {
  const found = devices.get(String(name));
  if (!found) throw new Error(`no device named ${String(name)}`);
  return found;
}

function online(name: unknown): RelaySocket {
  const socket = state(name).socket;
  if (!socket) throw new Error(`device ${String(name)} is not connected`);
  return socket;
}

/** Whether `value` contains `pattern`: objects key by key, arrays element by element (any order), else ===. */
function matches(value: unknown, pattern: unknown): boolean {
  if (Array.isArray(pattern)) {
    return Array.isArray(value) && pattern.every((p) => value.some((v) => matches(v, p)));
  }
  if (pattern !== null && typeof pattern === "object") {
    if (value === null || typeof value !== "object") return false;
    const record = value as Record<string, unknown>;
    return Object.entries(pattern).every(([key, p]) => matches(record[key], p));
  }
  return value === pattern;
}

/** Receives one page (or one batch of receipts pushed live) from the device's socket into its inbox and acknowledges it. */
async function receivePage(name: unknown, timeoutMs?: number): Promise<void> {
  const s = state(name);
  const { frame, at } = await online(name).nextArrival(["deliver", "receipts"], undefined, timeoutMs);
  if (frame.type === "receipts") {
    for (const envelope of frame.receipts) s.inbox.push({ envelope, at });
    online(name).send({ type: "receipts_ack", batches: [frame.batch] });
    return;
  }
  for (const envelope of frame.envelopes) s.inbox.push({ envelope, at });
  online(name).ack(frame.envelopes[frame.envelopes.length - 1]!.seq);
}

const commands: Record<string, (args: Record<string, unknown>) => Promise<unknown>> = {
  async register({ device, phone, keys }) {
    const registered = await registerDevice(baseUrl, String(phone), keys as DeviceKeysBody, askCode);
    devices.set(String(device), { device: registered, inbox: [] });
    return registered;
  },

  async link({ device, from, keys }) {
    const linked = await linkDevice(baseUrl, state(from).device, keys as DeviceKeysBody);
    devices.set(String(device), { device: linked, inbox: [] });
    return linked;
  },

  async bundle({ device, userId }) {
    return fetchBundle(baseUrl, state(device).device, String(userId));
  },

  async connect({ device }) {
    const s = state(device);
    if (s.socket) throw new Error(`device ${String(device)} is already connected`);
    const { socket, first } = await connectDevice(baseUrl, s.device);
    s.socket = socket;
    void socket.closed.then(() => {
      if (s.socket === socket) s.socket = undefined;
    });
    return first;
  },

  async send({ device, frame, timeoutMs }) {
    return online(device).request(frame as never, timeoutMs as number | undefined);
  },

  async read({ device, frame, timeoutMs }) {
    return online(device).request(frame as never, timeoutMs as number | undefined);
  },

  /** The next `count` envelopes, oldest first (acknowledged page by page). */
  async receive({ device, count, timeoutMs }) {
    const s = state(device);
    while (s.inbox.length < Number(count)) await receivePage(device, timeoutMs as number | undefined);
    return s.inbox.splice(0, Number(count));
  },

  /** Receives until an envelope contains `match`; returns it and takes it (and every earlier one) out of the inbox. */
  async until({ device, match, timeoutMs }) {
    const s = state(device);
    for (;;) {
      const index = s.inbox.findIndex((r) => matches(r.envelope, match));
      if (index >= 0) return { found: s.inbox[index], before: s.inbox.splice(0, index + 1).slice(0, index) };
      await receivePage(device, timeoutMs as number | undefined);
    }
  },

  /** Frames of other types that arrived and nobody asked for yet. */
  async frames({ device }) {
    const frames: ServerFrame[] = online(device).queue.map((a) => a.frame);
    return frames;
  },

  async close({ device }) {
    const s = state(device);
    await s.socket?.close();
    s.socket = undefined;
    return s.inbox.length;
  },

  async exit() {
    await Promise.all([...devices.values()].map((s) => s.socket?.close()));
    setImmediate(() => process.exit(0));
    return true;
  },
};

process.on("message", (message: ClientCommand | { codeReply: number; code: string }) => {
  if ("codeReply" in message) {
    codeRequests.get(message.codeReply)?.(message.code);
    codeRequests.delete(message.codeReply);
    return;
  }
  const handler = commands[message.cmd];
  if (!handler) {
    reply({ id: message.id, ok: false, error: `unknown command ${message.cmd}` });
    return;
  }
  handler(message.args ?? {}).then(
    (result) => reply({ id: message.id, ok: true, result }),
    (error: unknown) => reply({ id: message.id, ok: false, error: error instanceof Error ? error.stack ?? error.message : String(error) }),
  );
});

// The parent going away ends this process too: no orphaned clients.
process.on("disconnect", () => process.exit(0));
