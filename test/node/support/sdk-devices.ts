/**
 * SDK devices for end-to-end tests against `startRelay`: register or link a `Relay`, record every frame it sends
 * and everything it emits, and read the code from the captured SMS.
 */
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { MemoryStore, Relay, type GroupEventEvent, type GroupMessageEvent, type GroupReceiptsEvent, type GroupStatusEvent, type RelayStore } from "../../../client/node";
import type { Fetch } from "../../../client/http/request";
import type { AccountRecord } from "../../../client/store/types";
import type { ClientFrame } from "../../../src/protocol/frames";
import { eventually } from "./eventually";
import type { RelayServer } from "./server";

/** Fast reconnects and retries for tests. */
export const FAST = { reconnectBaseMs: 50, reconnectMaxMs: 500, retryDelayMs: 100 };

/** A device under test: its Relay, store, the frames it sent and what it emitted. */
export interface SdkDevice {
  relay: Relay;
  store: RelayStore;
  frames: ClientFrame[];
  groupMessages: GroupMessageEvent[];
  groupEvents: GroupEventEvent[];
  groupReceipts: GroupReceiptsEvent[];
  groupStatuses: GroupStatusEvent[];
  errors: unknown[];
}

/** The code in the latest SMS to `phone`. */
export function smsCode(server: RelayServer, phone: string): Promise<string> {
  return eventually(() => /(\d{6})/.exec(server.sms.findLast((m) => m.to === phone)?.text ?? "")?.[1]);
}

/** A WebSocket that records every frame the client sends. */
export function recordingWebSocket(frames: ClientFrame[]) {
  return class extends WebSocket {
    override send(data: Parameters<WebSocket["send"]>[0]): void {
      if (typeof data === "string" && data.startsWith("{")) frames.push(JSON.parse(data) as ClientFrame);
      super.send(data);
    }
  };
}

/** Records what `relay` emits. */
export function observe(relay: Relay, store: RelayStore, frames: ClientFrame[]): SdkDevice {
  const device: SdkDevice = { relay, store, frames, groupMessages: [], groupEvents: [], groupReceipts: [], groupStatuses: [], errors: [] };
  relay.on("groupMessage", (m) => device.groupMessages.push(m));
  relay.on("groupEvent", (e) => device.groupEvents.push(e));
  relay.on("groupReceipts", (r) => device.groupReceipts.push(r));
  relay.on("groupStatus", (s) => device.groupStatuses.push(s));
  relay.on("error", (e) => device.errors.push(e));
  return device;
}

/** Registers a new account (device 1). */
export async function registerSdk(server: RelayServer, phone: string, options: { store?: RelayStore; fetch?: Fetch } = {}): Promise<SdkDevice> {
  const store = options.store ?? new MemoryStore();
  const frames: ClientFrame[] = [];
  const relay = await Relay.register({
    url: server.url,
    phone,
    store,
    tuning: FAST,
    WebSocket: recordingWebSocket(frames),
    code: () => smsCode(server, phone),
    ...(options.fetch && { fetch: options.fetch }),
  });
  return observe(relay, store, frames);
}

/** Links a new device to `primary`'s account. */
export async function linkSdk(server: RelayServer, primary: SdkDevice): Promise<SdkDevice> {
  const store = new MemoryStore();
  const frames: ClientFrame[] = [];
  const { code } = await primary.relay.linkDevice();
  const relay = await Relay.link({ url: server.url, code, store, tuning: FAST, WebSocket: recordingWebSocket(frames), name: "second" });
  return observe(relay, store, frames);
}

/** Opens a device again from its store (a restarted client). */
export async function reconnectSdk(store: RelayStore): Promise<SdkDevice> {
  const frames: ClientFrame[] = [];
  const relay = await Relay.connect({ store, tuning: FAST, WebSocket: recordingWebSocket(frames) });
  return observe(relay, store, frames);
}

/** The device's current access token (as the SDK stored it), for calling routes directly. */
export async function accessToken(device: SdkDevice): Promise<string> {
  return ((await device.store.get("meta", "account")) as AccountRecord).session.accessToken;
}

/** The contents of every file under `dir`. */
export async function filesUnder(dir: string): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) out.push(await readFile(join(entry.parentPath, entry.name)));
  }
  return out;
}

/** The group sends a device made, by client id (the last frame sent for each). */
export function groupSends(device: SdkDevice): Map<string, Extract<ClientFrame, { type: "group_send" }>> {
  const out = new Map<string, Extract<ClientFrame, { type: "group_send" }>>();
  for (const f of device.frames) if (f.type === "group_send") out.set(f.id, f);
  return out;
}
