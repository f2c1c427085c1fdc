/** Errors the SDK throws, with the server's error codes (`src/protocol/errors.ts`) where one applies. */
import type { DeviceMismatch, ErrorCode } from "../src/protocol/errors";

/**
 * The server refused an HTTP request; `code` is the server's error code.
 * @example
 * try { await relay.removeDevice(1); } catch (e) { if (e instanceof RelayApiError && e.code === "forbidden") explain(); }
 */
export class RelayApiError extends Error {
  override name = "RelayApiError";
  constructor(
    readonly status: number,
    readonly code: ErrorCode | "network",
    message: string,
    readonly retryAfterMs?: number,
    readonly mismatches?: DeviceMismatch[],
  ) {
    super(message);
  }
}

/**
 * The device is signed out (refresh token refused, device removed or the account re-registered).
 * @example
 * relay.on("loggedOut", (e: LoggedOutError) => showLogin(e.message));
 */
export class LoggedOutError extends Error {
  override name = "LoggedOutError";
  constructor(message = "this device is signed out") {
    super(message);
  }
}

/**
 * The store holds no account: register or link first.
 * @example
 * const relay = await Relay.connect({ store }).catch((e) => (e instanceof NoAccountError ? onboard() : Promise.reject(e)));
 */
export class NoAccountError extends Error {
  override name = "NoAccountError";
  constructor() {
    super("the store holds no Relay account: use Relay.register or Relay.link first");
  }
}

/**
 * The connection is closed (or was closed while a request waited for its answer).
 * @example
 * const answer = await connection.request(frame).catch((e) => (e instanceof ConnectionClosedError ? undefined : Promise.reject(e)));
 */
export class ConnectionClosedError extends Error {
  override name = "ConnectionClosedError";
}
