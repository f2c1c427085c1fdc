/**
 * The device's one WebSocket, kept open: connect with a fresh access token, reconnect with jittered
 * exponential backoff, heartbeat with `{"type":"ping"}`, refresh the token on a 4401 close, and stop for good
 * when signed out or replaced (4409). Requests (`send` and `read` frames) wait for their `sent`/`error` answer.
 */
import type { ClientFrame, ServerFrame } from "../../src/protocol/frames";
import { ConnectionClosedError } from "../errors";
import { backoffDelay } from "./backoff";
import { CLOSE_CODES, PING_FRAME, connectProtocols, connectUrl } from "./wire";

/** What the connection is doing. `stopped`: closed for good (by the app, a sign-out or a replacing connection). */
export type ConnectionState = "connecting" | "open" | "waiting" | "stopped";

/** A WebSocket constructor (the global one in browsers, Workers, Deno and Node ≥ 22). */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocket;

/** The answer to a `send` or `read` frame. */
export type Answer = Extract<ServerFrame, { type: "sent" | "error" }>;

export interface ConnectionOptions {
  url: string;
  WebSocket: WebSocketConstructor;
  /** A fresh access token for the next connect. */
  accessToken(): Promise<string>;
  /** Called after a 4401 with the token that was refused: refresh it (throws when signed out). */
  refreshToken(rejected: string): Promise<unknown>;
  /** `ready` arrived: the socket is usable. */
  onReady(frame: Extract<ServerFrame, { type: "ready" }>): void;
  /** A `deliver` frame (the caller acknowledges). */
  onDeliver(frame: Extract<ServerFrame, { type: "deliver" }>): void;
  /** A `receipts` frame: receipts pushed live (the caller acknowledges with `ackReceipts`). */
  onReceipts(frame: Extract<ServerFrame, { type: "receipts" }>): void;
  /** Any other frame nobody waited for (e.g. an `error` without id). */
  onOther(frame: ServerFrame): void;
  onState(state: ConnectionState, detail?: { code?: number; reason?: string; delayMs?: number }): void;
  /** The connection stopped for good because of `error` (signed out, replaced). */
  onFatal(error: Error): void;
  timing: { reconnectBaseMs: number; reconnectMaxMs: number; heartbeatIntervalMs: number; heartbeatTimeoutMs: number };
}

/**
 * @example
 * const connection = new Connection({ url, WebSocket, accessToken, refreshToken, onReady, onDeliver, onOther, onState, onFatal, timing });
 * connection.start();
 * const answer = await connection.request({ type: "send", id, to, messages, sync });
 */
export class Connection {
  private ws: WebSocket | undefined;
  private token = "";
  private open = false;
  private stopped = true;
  private failures = 0;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private heartbeat: ReturnType<typeof setInterval> | undefined;
  private lastFrameAt = 0;
  private pinged = false;
  private socketCount = 0;
  private readonly waiting = new Map<string, { resolve(a: Answer): void; reject(e: Error): void }>();

  constructor(private readonly options: ConnectionOptions) {}

  /** Whether `ready` arrived on the current socket. */
  get isOpen(): boolean {
    return this.open;
  }

  /** Counts sockets: envelopes delivered on one socket are acknowledged on that socket only. */
  get generation(): number {
    return this.socketCount;
  }

  /**
   * Acknowledges envelopes up to `upTo` if the socket that delivered them (`generation`) is still the open
   * one; otherwise does nothing (the server redelivers them on the new socket and they are deduped).
   * @example
   * const generation = connection.generation;
   * await storeAll(frame.envelopes);
   * connection.ack(generation, frame.envelopes.at(-1).seq);
   */
  ack(generation: number, upTo: number): boolean {
    return generation === this.socketCount && this.send({ type: "ack", upTo });
  }

  /**
   * Acknowledges `receipts` frames by batch id, on whichever socket is open (the server knows its batches by id,
   * not by socket). False when no socket is open: the server sends those receipts again.
   * @example
   * connection.ackReceipts([frame.batch]);
   */
  ackReceipts(batches: string[]): boolean {
    return batches.length > 0 && this.send({ type: "receipts_ack", batches });
  }

  /**
   * Closes the current socket and reconnects after the usual backoff (e.g. after a local storage failure,
   * so that everything not acknowledged is redelivered).
   * @example
   * connection.drop("store failed");
   */
  drop(reason: string): void {
    if (this.stopped || !this.ws) return;
    this.teardown(4000, reason);
    this.options.onState("waiting", { reason });
    this.retry();
  }

  /**
   * Starts connecting (no-op when running).
   * @example
   * connection.start();
   */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.failures = 0;
    void this.connect();
  }

  /**
   * Closes the socket and stops reconnecting.
   * @example
   * connection.stop();
   */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.teardown(1000, "client closed");
    this.options.onState("stopped");
  }

  /**
   * Reconnects at once when waiting (e.g. the browser came back online).
   * @example
   * addEventListener("online", () => connection.reconnectNow());
   */
  reconnectNow(): void {
    if (this.stopped || this.ws) return;
    clearTimeout(this.retryTimer);
    void this.connect();
  }

  /**
   * Sends a frame on the open socket; returns false when there is none.
   * @example
   * connection.send({ type: "ack", upTo: 42 });
   */
  send(frame: ClientFrame): boolean {
    if (!this.open || !this.ws) return false;
    try {
      this.ws.send(JSON.stringify(frame));
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Sends a `send` or `read` frame and waits for its answer; rejects with {@link ConnectionClosedError}
   * when the socket closes first (resend it on the next connection: the server dedupes on the id).
   * @example
   * const answer = await connection.request(frame);
   * if (answer.type === "error" && answer.code === "mismatched_devices") repair(answer.mismatches);
   */
  request(frame: ClientFrame & { id: string }): Promise<Answer> {
    if (!this.open) return Promise.reject(new ConnectionClosedError("not connected"));
    const answer = new Promise<Answer>((resolve, reject) => this.waiting.set(frame.id, { resolve, reject }));
    if (!this.send(frame)) {
      this.waiting.get(frame.id)?.reject(new ConnectionClosedError("not connected"));
      this.waiting.delete(frame.id);
    }
    return answer;
  }

  /**
   * Like {@link request}, but a connection that closes first answers `undefined` (the caller keeps its item for the
   * next connection) instead of rejecting.
   * @example
   * const answer = await connection.requestWhileOpen(frame);
   * if (!answer) return false; // closed: retry after reconnecting
   */
  async requestWhileOpen(frame: ClientFrame & { id: string }): Promise<Answer | undefined> {
    try {
      return await this.request(frame);
    } catch (error) {
      if (error instanceof ConnectionClosedError) return undefined;
      throw error;
    }
  }

  private async connect(): Promise<void> {
    this.options.onState("connecting");
    try {
      this.token = await this.options.accessToken();
    } catch (error) {
      if (this.isFatal(error)) return this.fatal(error as Error);
      return this.retry();
    }
    if (this.stopped) return;
    let ws: WebSocket;
    try {
      ws = new this.options.WebSocket(connectUrl(this.options.url), connectProtocols(this.token));
    } catch {
      return this.retry();
    }
    this.ws = ws;
    this.socketCount++;
    this.lastFrameAt = Date.now();
    this.pinged = false;
    ws.onmessage = (event) => {
      if (this.ws === ws) this.receive(event.data);
    };
    ws.onclose = (event) => {
      if (this.ws === ws) void this.closed(event.code, event.reason);
    };
    ws.onerror = () => {
      // a close event follows
    };
    this.heartbeat = setInterval(() => this.beat(), Math.max(250, Math.min(this.options.timing.heartbeatIntervalMs, this.options.timing.heartbeatTimeoutMs) / 2));
  }

  private receive(data: unknown): void {
    this.lastFrameAt = Date.now();
    this.pinged = false;
    if (typeof data !== "string") return;
    let frame: ServerFrame;
    try {
      frame = JSON.parse(data) as ServerFrame;
    } catch {
      return;
    }
    switch (frame.type) {
      case "pong":
        return;
      case "ready":
        this.open = true;
        this.failures = 0;
        this.options.onState("open");
        this.options.onReady(frame);
        return;
      case "deliver":
        this.options.onDeliver(frame);
        return;
      case "receipts":
        this.options.onReceipts(frame);
        return;
      case "group_notice":
      case "group_receipts":
        this.options.onOther(frame);
        return;
      case "sent":
      case "error": {
        if (frame.type === "error" && frame.id === undefined && (frame.code === "unauthorized" || frame.code === "conflict")) {
          // The server says why before it closes (4401 / 4409); act now rather than wait for the close handshake.
          void this.closed(frame.code === "unauthorized" ? CLOSE_CODES.unauthorized : CLOSE_CODES.replaced, frame.message);
          return;
        }
        const waiter = frame.id === undefined ? undefined : this.waiting.get(frame.id);
        if (waiter) {
          this.waiting.delete(frame.id!);
          waiter.resolve(frame);
        } else this.options.onOther(frame);
        return;
      }
    }
  }

  /** Pings after a quiet interval; gives the socket up when the ping goes unanswered. */
  private beat(): void {
    const ws = this.ws;
    if (!ws) return;
    const quiet = Date.now() - this.lastFrameAt;
    const { heartbeatIntervalMs, heartbeatTimeoutMs } = this.options.timing;
    if (quiet > heartbeatIntervalMs + heartbeatTimeoutMs) {
      this.teardown(4000, "heartbeat timeout");
      void this.closed(4000, "heartbeat timeout");
    } else if (quiet > heartbeatIntervalMs && !this.pinged && ws.readyState === 1) {
      this.pinged = true;
      try {
        ws.send(PING_FRAME);
      } catch {
        // closing: the close event follows
      }
    }
  }

  private teardown(code: number, reason: string): void {
    clearInterval(this.heartbeat);
    const ws = this.ws;
    this.ws = undefined;
    this.open = false;
    if (ws) {
      ws.onmessage = null;
      ws.onclose = null;
      try {
        ws.close(code, reason);
      } catch {
        // already closed
      }
    }
    for (const waiter of this.waiting.values()) waiter.reject(new ConnectionClosedError(`connection closed: ${reason}`));
    this.waiting.clear();
  }

  private async closed(code: number, reason: string): Promise<void> {
    this.teardown(1000, reason);
    if (this.stopped) return;
    if (code === CLOSE_CODES.replaced) {
      return this.fatal(new ConnectionClosedError(`replaced by a newer connection of this device (${reason})`));
    }
    this.options.onState("waiting", { code, reason });
    if (code === CLOSE_CODES.unauthorized) {
      try {
        await this.options.refreshToken(this.token);
      } catch (error) {
        if (this.isFatal(error)) return this.fatal(error as Error);
      }
    }
    this.retry();
  }

  private retry(): void {
    if (this.stopped) return;
    const delayMs = backoffDelay(this.failures++, this.options.timing.reconnectBaseMs, this.options.timing.reconnectMaxMs);
    this.options.onState("waiting", { delayMs });
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => void this.connect(), delayMs);
  }

  private isFatal(error: unknown): boolean {
    return error instanceof Error && error.name === "LoggedOutError";
  }

  private fatal(error: Error): void {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.teardown(1000, error.message);
    this.options.onState("stopped");
    this.options.onFatal(error);
  }
}
