/**
 * `Relay`: the SDK's front door. One instance is one signed-in device: it keeps the connection open,
 * encrypts every send for every device of the recipient and of your own account, decrypts, stores and
 * acknowledges what arrives, tracks ticks, and keeps the device's prekeys topped up.
 *
 * @example
 * const relay = await Relay.connect({ store });
 * relay.on("message", (m) => console.log(m.from, m.body));
 * await relay.send(bobId, "hi");
 */
import type { DeviceInfo, LinkCodeResponse, Settings } from "../src/protocol/http";
import type { ServerFrame } from "../src/protocol/frames";
import { TokenManager } from "./account/tokens";
import { enrollDevice } from "./account/enroll";
import type { Core } from "./core";
import { LoggedOutError, NoAccountError } from "./errors";
import { Emitter, type Listener } from "./events";
import { RelayApi, redeemLinkCode, registrationCode, verifyRegistration, type ApiOptions } from "./http/api";
import type { Fetch } from "./http/request";
import { trustOps } from "./identity/pending";
import { safetyNumberWith } from "./identity/safety-number";
import { markReadOps } from "./messages/read-receipts";
import { maintainKeys, type KeyMaintenance } from "./keys/maintenance";
import { CLIENT_DEFAULTS, type Tuning } from "./limits";
import { findMessage, listMessages, outgoingMessage, storeMessageOps, type HistoryQuery } from "./messages/history";
import { newMessageId } from "./messages/ids";
import { Outbox, outboxKey, outboxOrder } from "./messages/outbox";
import { OrderClock } from "./util/order-clock";
import { applyReceipt, receiveEnvelope, releaseQuarantine } from "./messages/receiver";
import type { MessageRecord, OutboxSend } from "./messages/types";
import type { RelayEvents } from "./relay-events";
import type { LocalIdentity } from "./sessions/staged-store";
import { META } from "./store/keys";
import { put, type AccountRecord, type LocalIdentityRecord, type RelayStore } from "./store/types";
import { Acknowledger, LiveReceiptAcknowledger } from "./transport/acks";
import { Connection, type ConnectionState, type WebSocketConstructor } from "./transport/connection";
import { SerialQueue } from "./util/serial";
import { LIMITS } from "../src/protocol/limits";
import { GroupClient } from "./groups/client";
import { RelayGroups } from "./groups/relay-groups";

/** Options every way of getting a `Relay` shares. */
export interface RelayOptions {
  /** Where the device's account, keys, sessions, history and outbox live. */
  store: RelayStore;
  /** Server base URL (`https://…`); defaults to the one the account was registered with. */
  url?: string;
  /** `fetch` to use (default: the global one). */
  fetch?: Fetch;
  /** WebSocket constructor to use (default: the global one). */
  WebSocket?: WebSocketConstructor;
  /** Overrides of {@link CLIENT_DEFAULTS} (timeouts, backoff, prekey thresholds…). */
  tuning?: Partial<Tuning>;
}

/** Registering a new account (its primary device) by phone number. */
export interface RegisterOptions extends RelayOptions {
  url: string;
  /** E.164, e.g. `+14155550101`. */
  phone: string;
  /** A name for this device. */
  name?: string;
}

/** Linking this device to an existing account with a code from one of its devices. */
export interface LinkOptions extends RelayOptions {
  url: string;
  /** The code `relay.linkDevice()` returned on the existing device. */
  code: string;
  name?: string;
}

/** What `send` accepts: text, or bytes. */
export type SendContent = string | Uint8Array;

/** A message reference: the sender's user, device and client id. */
export type MessageRefLike = Pick<MessageRecord, "from" | "fromDevice" | "id">;

const PRIMARY_DEVICE = 1;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Room left in an envelope for padding, the JSON content wrapper and the Signal message framing. */
const MAX_CONTENT_BYTES = LIMITS.maxEnvelopeBytes - 4096;

function resolveTuning(options: RelayOptions): Tuning {
  return { ...CLIENT_DEFAULTS, ...options.tuning };
}

function apiOptions(url: string, options: RelayOptions): ApiOptions {
  return { url, fetch: options.fetch ?? globalThis.fetch.bind(globalThis), timeoutMs: resolveTuning(options).httpTimeoutMs };
}

/**
 * A registration waiting for its SMS code.
 * @example
 * const pending = await Relay.register({ url, phone, store });
 * const relay = await pending.verify(code);
 */
export class PendingRegistration {
  /** @internal */
  constructor(
    private readonly options: RegisterOptions,
    /** When the code expires (ms since the epoch). */
    readonly expiresAt: number,
  ) {}

  /**
   * Completes the registration with the code from the SMS and connects.
   * @example
   * const pending = await Relay.register({ url, phone, store });
   * const relay = await pending.verify(await askUserForCode());
   */
  async verify(code: string): Promise<Relay> {
    const { options } = this;
    const api = apiOptions(options.url, options);
    await enrollDevice(
      options.store,
      options.url,
      resolveTuning(options).preKeyBatch,
      (device) => verifyRegistration(api, { phone: options.phone, code, device, ...(options.name !== undefined && { name: options.name }) }),
      options.phone,
    );
    return Relay.connect(options);
  }
}

/**
 * One signed-in device. Get one with {@link Relay.register}, {@link Relay.link} or {@link Relay.connect}.
 * Groups and channels: the methods inherited from {@link RelayGroups}.
 * @example
 * const relay = await Relay.connect({ store });
 * relay.on("message", (m) => console.log(m.body));
 * await relay.send(bobId, "hi");
 */
export class Relay extends RelayGroups {
  private readonly core: Core;
  protected readonly groupClient: GroupClient;
  private readonly events = new Emitter<RelayEvents>();
  private readonly outbox: Outbox;
  private readonly tokens: TokenManager;
  private state: ConnectionState = "connecting";
  private keyTimer: ReturnType<typeof setInterval> | undefined;
  private readonly acks: Acknowledger;
  private readonly liveReceiptAcks: LiveReceiptAcknowledger;
  private lastKeyCheck = 0;
  private closed = false;
  private signedOut = false;

  private constructor(
    private account: AccountRecord,
    local: LocalIdentityRecord,
    private readonly options: RelayOptions,
    private readonly clock: OrderClock,
  ) {
    super();
    const url = options.url ?? account.url;
    const tuning = resolveTuning(options);
    const store = options.store;
    this.tokens = new TokenManager({
      url,
      session: account.session,
      fetch: apiOptions(url, options).fetch,
      timeoutMs: tuning.httpTimeoutMs,
      marginMs: tuning.tokenRefreshMarginMs,
      save: async (session) => {
        this.account = { ...this.account, session };
        await store.write([put("meta", META.account, this.account)]);
      },
      onLoggedOut: (error) => this.signOut(error),
    });
    const WebSocketImpl = options.WebSocket ?? (globalThis.WebSocket as WebSocketConstructor | undefined);
    if (!WebSocketImpl) throw new Error("no WebSocket in this runtime: pass options.WebSocket");
    const connection = new Connection({
      url,
      WebSocket: WebSocketImpl,
      accessToken: () => this.tokens.accessToken(),
      refreshToken: (rejected) => this.tokens.refresh(rejected),
      onReady: () => this.onReady(),
      onDeliver: (frame) => this.onDeliver(frame),
      onReceipts: (frame) => this.onReceipts(frame),
      onOther: (frame) => this.onOther(frame),
      onState: (state, detail) => {
        this.state = state;
        this.events.emit("connection", { state, ...detail });
      },
      onFatal: (error) => (error instanceof LoggedOutError ? this.signOut(error) : this.events.emit("error", error)),
      timing: tuning,
    });
    const localIdentity: LocalIdentity = {
      address: { userId: account.userId, deviceId: account.deviceId },
      identity: local.identity,
      registrationId: local.registrationId,
    };
    this.acks = new Acknowledger(connection, tuning.receiptAckDelayMs, tuning.receiptAckMaxPending);
    this.liveReceiptAcks = new LiveReceiptAcknowledger(connection, tuning.receiptAckDelayMs, LIMITS.maxReceiptAckBatches);
    this.core = {
      store,
      local: localIdentity,
      userId: account.userId,
      deviceId: account.deviceId,
      api: new RelayApi(apiOptions(url, options), this.tokens),
      connection,
      events: this.events,
      tuning,
      lane: new SerialQueue(),
      now: Date.now,
    };
    this.outbox = new Outbox(this.core);
    this.groupClient = new GroupClient(this.core);
  }

  // ---- Getting a Relay ----

  /**
   * Opens the device stored in `options.store` and starts its connection (resolves at once; the connection
   * comes up in the background, see {@link opened}). Throws {@link NoAccountError} for an empty store.
   * @example
   * const relay = await Relay.connect({ store: new SqliteStore("alice.db") });
   */
  static async connect(options: RelayOptions): Promise<Relay> {
    const account = (await options.store.get("meta", META.account)) as AccountRecord | undefined;
    const local = (await options.store.get("meta", META.identity)) as LocalIdentityRecord | undefined;
    if (!account || !local) throw new NoAccountError();
    const lastQueued = (await options.store.list("outbox", { reverse: true, limit: 1 }))[0]?.key;
    const relay = new Relay(account, local, options, new OrderClock(outboxOrder(lastQueued)));
    relay.start();
    return relay;
  }

  /**
   * Registers a new account by phone number. With `code` (a callback that returns the SMS code) it resolves
   * to the connected `Relay`; without, to a {@link PendingRegistration} whose `verify(code)` finishes.
   * Re-registering a number signs out every device the account had.
   * @example
   * const relay = await Relay.register({ url, phone: "+14155550101", store, code: () => prompt("Code?") });
   * // or
   * const pending = await Relay.register({ url, phone, store });
   * const relay = await pending.verify("123456");
   */
  static register(options: RegisterOptions & { code: (phone: string) => Promise<string> | string }): Promise<Relay>;
  static register(options: RegisterOptions): Promise<PendingRegistration>;
  static async register(options: RegisterOptions & { code?: (phone: string) => Promise<string> | string }): Promise<Relay | PendingRegistration> {
    if (await options.store.get("meta", META.account)) {
      throw new Error("this store already holds a Relay account: connect with it, or log out first");
    }
    const { expiresAt } = await registrationCode(apiOptions(options.url, options), options.phone);
    const pending = new PendingRegistration(options, expiresAt);
    return options.code ? pending.verify(await options.code(options.phone)) : pending;
  }

  /**
   * Links this (new) device to an existing account with a code from `relay.linkDevice()` on one of its devices.
   * @example
   * const { code } = await phone.linkDevice();          // on the existing device
   * const laptop = await Relay.link({ url, code, store }); // on the new one
   */
  static async link(options: LinkOptions): Promise<Relay> {
    const api = apiOptions(options.url, options);
    await enrollDevice(options.store, options.url, resolveTuning(options).preKeyBatch, (device) =>
      redeemLinkCode(api, { code: options.code, device, ...(options.name !== undefined && { name: options.name }) }),
    );
    return Relay.connect(options);
  }

  // ---- Who and how ----

  /** This account's user id. */
  get userId(): string {
    return this.core.userId;
  }

  /** This device's id (1: the primary). */
  get deviceId(): number {
    return this.core.deviceId;
  }

  /** The connection's state. */
  get connectionState(): ConnectionState {
    return this.state;
  }

  /**
   * Subscribes to an event; returns the unsubscribe function.
   * @example
   * const off = relay.on("status", ({ id, status }) => tick(id, status));
   */
  on<K extends keyof RelayEvents>(event: K, listener: Listener<RelayEvents[K]>): () => void {
    return this.events.on(event, listener);
  }

  /**
   * Subscribes for one event.
   * @example
   * relay.once("message", (m) => console.log("first message", m));
   */
  once<K extends keyof RelayEvents>(event: K, listener: Listener<RelayEvents[K]>): () => void {
    return this.events.once(event, listener);
  }

  /**
   * Unsubscribes.
   * @example
   * relay.off("message", onMessage);
   */
  off<K extends keyof RelayEvents>(event: K, listener: Listener<RelayEvents[K]>): void {
    this.events.off(event, listener);
  }

  /**
   * Resolves when the connection is open (at once if it is).
   * @example
   * await relay.opened();
   */
  opened(): Promise<void> {
    if (this.state === "open") return Promise.resolve();
    return new Promise((resolve, reject) => {
      const off = this.events.on("connection", ({ state }) => {
        if (state === "open") {
          off();
          resolve();
        } else if (state === "stopped") {
          off();
          reject(new Error("the connection stopped"));
        }
      });
    });
  }

  // ---- Messages ----

  /**
   * Sends text or bytes to `userId` (your own user id: a note to your other devices). Resolves once the
   * message is stored locally with status `pending`; it goes out now or when the connection is back, and
   * `status` events follow (`sent`, `delivered`, `read`).
   * @example
   * const message = await relay.send(bobId, "hi");
   * relay.on("status", (s) => s.id === message.id && console.log(s.status));
   */
  async send(userId: string, content: SendContent): Promise<MessageRecord> {
    if (!UUID.test(userId)) throw new TypeError(`not a user id: ${JSON.stringify(userId)}`);
    const body = typeof content === "string" ? { text: content } : content instanceof Uint8Array ? { bytes: Uint8Array.from(content) } : undefined;
    if (!body) throw new TypeError("content must be a string or a Uint8Array");
    const size = "text" in body ? new TextEncoder().encode(body.text).length : (body.bytes.length * 4) / 3;
    if (size > MAX_CONTENT_BYTES) throw new RangeError(`message too large: at most ${MAX_CONTENT_BYTES} bytes`);
    const id = newMessageId();
    const sentAt = this.core.now();
    const order = this.clock.next(sentAt);
    const record = outgoingMessage({ id, from: this.userId, fromDevice: this.deviceId, to: userId, body, sentAt }, order);
    const item: OutboxSend = { kind: "send", id, to: userId, messageKey: record.key, body, sentAt, repairs: 0 };
    await this.core.store.write([...storeMessageOps(record), put("outbox", outboxKey(order, id), item)]);
    this.events.emit("status", { id, conversation: userId, status: "pending", message: record });
    this.outbox.kick();
    return record;
  }

  /**
   * Marks received messages read: stored locally at once, and a `read` receipt goes to each sender (when
   * both sides have read receipts on).
   * @example
   * await relay.markRead(await relay.messages(bobId));
   */
  async markRead(messages: readonly MessageRefLike[]): Promise<void> {
    const ops = await markReadOps(this.core, this.clock, messages);
    if (ops.length === 0) return;
    await this.core.store.write(ops);
    this.outbox.kick();
  }

  /**
   * The newest messages of the conversation with `userId`, oldest first; page back with `before`.
   * @example
   * const page = await relay.messages(bobId, { limit: 20 });
   * const older = await relay.messages(bobId, { limit: 20, before: page[0]?.key });
   */
  messages(userId: string, query: HistoryQuery = {}): Promise<MessageRecord[]> {
    return listMessages(this.core.store, userId, query);
  }

  /**
   * One message by its sender's (user, device, id).
   * @example
   * const m = await relay.message(status.message);
   */
  message(ref: MessageRefLike): Promise<MessageRecord | undefined> {
    return findMessage(this.core.store, ref.from, ref.fromDevice, ref.id);
  }

  /**
   * Messages still waiting for the server (sends and read receipts), oldest first.
   * @example
   * const waiting = await relay.pending();
   */
  async pending(): Promise<{ kind: "send" | "read"; id: string; to: string }[]> {
    return (await this.core.store.list("outbox")).map(({ value }) => ({ kind: value.kind, id: value.id, to: value.to }));
  }

  // ---- Identity ----

  /**
   * Accepts the new identity key of `userId`'s device (or of all its devices with a pending change) after an
   * `identityChanged` event: held messages from it are decrypted, sends to it resume.
   * @example
   * relay.on("identityChanged", async ({ userId }) => { if (await confirm("Safety number changed")) await relay.trustIdentity(userId); });
   */
  async trustIdentity(userId: string, deviceId?: number): Promise<void> {
    await this.core.lane.run(async () => {
      const ops = await trustOps(this.core.store, userId, deviceId, this.core.now());
      for (const { key, value } of await this.core.store.list("outbox")) {
        if (value.kind === "send" && value.blockedBy === userId) {
          const next: OutboxSend = { ...value, repairs: 0 };
          delete next.blockedBy;
          ops.push(put("outbox", key, next));
        }
      }
      await this.core.store.write(ops);
      await releaseQuarantine(this.core);
    });
    this.outbox.kick();
  }

  /**
   * The 60-digit safety number between your account and `userId`'s (libsignal's numeric fingerprint over
   * both accounts' primary-device identity keys), the same on every device of both accounts. Compare it
   * out of band; fetches a key bundle when the primary key is not known yet.
   * @example
   * const digits = await relay.safetyNumber(bobId); // "053281962705…" (60 digits)
   */
  safetyNumber(userId: string): Promise<string> {
    return safetyNumberWith(this.core, userId);
  }

  // ---- Devices and account ----

  /**
   * Creates a single-use code (valid 10 minutes) that a new device passes to `Relay.link`.
   * @example
   * const { code, expiresAt } = await relay.linkDevice();
   */
  linkDevice(): Promise<LinkCodeResponse> {
    return this.core.api.linkCode();
  }

  /**
   * This account's devices.
   * @example
   * for (const d of await relay.devices()) console.log(d.deviceId, d.name);
   */
  async devices(): Promise<DeviceInfo[]> {
    return (await this.core.api.devices()).devices;
  }

  /**
   * Removes a linked device (the primary may remove any; a linked device only itself, which logs it out).
   * @example
   * await relay.removeDevice(3);
   */
  async removeDevice(deviceId: number): Promise<void> {
    if (deviceId === this.deviceId) return this.logout();
    await this.core.api.removeDevice(deviceId);
  }

  /**
   * Read-receipt setting of the account (off: yours are not sent and others' are not shown to you).
   * @example
   * await relay.updateSettings({ readReceipts: false });
   */
  updateSettings(changes: Partial<Settings>): Promise<Settings> {
    return this.core.api.updateSettings(changes);
  }

  /**
   * Checks the prekeys now: tops up one-time prekeys below the minimum, rotates the signed and last-resort
   * prekeys when due (or when `rotate` is set). Also runs on every connect and twice a day.
   * @example
   * const { preKeys, rotated } = await relay.maintainKeys();
   */
  async maintainKeys(options: { rotate?: boolean } = {}): Promise<KeyMaintenance> {
    this.lastKeyCheck = this.core.now();
    return maintainKeys(this.core, options);
  }

  /**
   * Signs this device out and deletes everything it stored. A linked device is removed from the account;
   * the primary device's tokens are revoked on the server (it stays the account's primary: registering the
   * number again brings it back).
   * @example
   * await relay.logout();
   */
  async logout(): Promise<void> {
    if (!this.signedOut) {
      try {
        if (this.deviceId === PRIMARY_DEVICE) await this.core.api.signOut();
        else await this.core.api.removeDevice(this.deviceId);
      } catch (error) {
        if (!(error instanceof LoggedOutError) && (error as { status?: number }).status !== 401) throw error;
      }
    }
    await this.close();
    await this.core.store.clear();
  }

  /**
   * Stops the connection and timers and waits for work in progress; the store stays open (it is yours).
   * @example
   * await relay.close();
   * await store.close();
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.keyTimer);
    this.acks.flush();
    this.liveReceiptAcks.flush();
    this.core.connection.stop();
    await Promise.all([this.outbox.idle(), this.groupClient.idle()]);
    await this.core.lane.run(async () => undefined);
  }

  // ---- Connection callbacks ----

  private start(): void {
    this.keyTimer = setInterval(() => this.checkKeys(), Math.min(this.core.tuning.keyCheckIntervalMs, 2 ** 31 - 1));
    this.core.connection.start();
  }

  private onReady(): void {
    this.outbox.kick({ resume: true });
    this.groupClient.onReady();
    if (this.core.now() - this.lastKeyCheck >= this.core.tuning.keyCheckIntervalMs) this.checkKeys();
  }

  private checkKeys(): void {
    if (this.closed || !this.core.connection.isOpen) return;
    this.maintainKeys().catch((error) => this.events.emit("error", error));
  }

  private onDeliver(frame: Extract<ServerFrame, { type: "deliver" }>): void {
    const connection = this.core.connection;
    const generation = connection.generation;
    const last = frame.envelopes[frame.envelopes.length - 1];
    if (!last) return;
    void this.core.lane
      .run(async () => {
        if (generation !== connection.generation) return false; // a newer socket redelivers these
        for (const envelope of frame.envelopes) await receiveEnvelope(this.core, envelope);
        return true;
      })
      .then(
        (stored) => {
          if (!stored) return;
          const receiptsOnly = frame.envelopes.every((envelope) => envelope.kind === "receipt");
          // After close() nothing waits for a timer: the server redelivers what was not acknowledged.
          if (!this.closed) this.acks.stored(generation, last.seq, frame.envelopes.length, receiptsOnly);
          this.groupClient.afterDeliver();
        },
        (error: unknown) => {
          // Not stored, so not acknowledged: reconnect and let the server redeliver.
          this.events.emit("error", error);
          connection.drop("could not store delivered envelopes");
        },
      );
  }

  private onReceipts(frame: Extract<ServerFrame, { type: "receipts" }>): void {
    void this.core.lane
      .run(async () => {
        for (const receipt of frame.receipts) await applyReceipt(this.core, receipt);
      })
      .then(
        () => {
          if (!this.closed) this.liveReceiptAcks.stored(frame.batch);
        },
        // Not stored, so not acknowledged: the server stores them for this device and delivers them again.
        (error: unknown) => this.events.emit("error", error),
      );
  }

  private onOther(frame: ServerFrame): void {
    if (this.groupClient.onFrame(frame)) return;
    if (frame.type === "error") this.events.emit("error", new Error(`server: ${frame.code}: ${frame.message}`));
  }

  private signOut(error: LoggedOutError): void {
    if (this.signedOut) return;
    this.signedOut = true;
    clearInterval(this.keyTimer);
    this.core.connection.stop();
    this.events.emit("loggedOut", error);
  }
}
