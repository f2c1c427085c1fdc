/**
 * The WebSocket protocol's constants for the SDK. Their values are checked against `src/protocol/frames.ts`
 * by type (`typeof PING_FRAME` …): a change there fails type-checking here. Importing them at run time would
 * pull the server's zod schemas into every browser bundle (~90 KB gzipped), so only their types are imported.
 */
import type { CIPHERTEXT_TYPES as ServerCiphertextTypes, CLOSE_CODES as ServerCloseCodes, PING_FRAME as ServerPing } from "../../src/protocol/frames";

/** The heartbeat text frame. */
export const PING_FRAME: typeof ServerPing = '{"type":"ping"}';

/** Close codes the server uses. */
export const CLOSE_CODES: typeof ServerCloseCodes = { unauthorized: 4401, replaced: 4409 };

/** libsignal's ciphertext message types. */
export const CIPHERTEXT_TYPES: typeof ServerCiphertextTypes = { whisper: 2, preKey: 3, senderKey: 7, plaintext: 8 };

/**
 * The subprotocols that carry the access token from a browser (which cannot set headers on a WebSocket).
 * @example
 * new WebSocket(connectUrl(url), connectProtocols(token));
 */
export function connectProtocols(accessToken: string): string[] {
  return ["relay.v1", `bearer.${accessToken}`];
}

/**
 * `ws(s)://host/v1/connect` for an `http(s)://host` base URL.
 * @example
 * connectUrl("https://relay.example"); // "wss://relay.example/v1/connect"
 */
export function connectUrl(baseUrl: string): string {
  return `${baseUrl.replace(/\/+$/, "").replace(/^http/, "ws")}/v1/connect`;
}
