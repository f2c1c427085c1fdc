/**
 * The plaintext inside every 1:1 ciphertext: a small versioned JSON document, padded as Signal pads
 * (0x80 then zeros up to a multiple of 160 bytes) so ciphertext lengths say little about the text.
 * The server never sees it; only SDK instances read it.
 */
import { fromBase64, toBase64 } from "../../src/protocol/base64";
import type { MessageBody } from "./types";

/** What one ciphertext carries. */
export interface Content {
  /** The message body. */
  body: MessageBody;
  /** The sender's compose time. */
  sentAt: number;
  /** Sync copies only: the user the message was sent to (the conversation it belongs to). */
  to?: string;
}

const VERSION = 1;
const PAD_BLOCK = 160;

interface Wire {
  v: number;
  text?: string;
  bytes?: string;
  sentAt: number;
  to?: string;
}

/**
 * A content document could not be read (wrong version, bad padding, bad JSON).
 * @example
 * try { decodeContent(bytes); } catch (e) { if (e instanceof ContentError) skip(); }
 */
export class ContentError extends Error {
  override name = "ContentError";
}

/**
 * Encodes and pads a content document.
 * @example
 * const plaintext = encodeContent({ body: { text: "hi" }, sentAt: Date.now() });
 */
export function encodeContent(content: Content): Uint8Array {
  const wire: Wire = { v: VERSION, sentAt: content.sentAt, ...(content.to !== undefined && { to: content.to }) };
  if ("text" in content.body) wire.text = content.body.text;
  else wire.bytes = toBase64(content.body.bytes);
  const json = new TextEncoder().encode(JSON.stringify(wire));
  const padded = new Uint8Array(Math.ceil((json.length + 1) / PAD_BLOCK) * PAD_BLOCK);
  padded.set(json);
  padded[json.length] = 0x80;
  return padded;
}

/**
 * Reads {@link encodeContent}'s bytes; throws {@link ContentError} on anything else.
 * @example
 * const { body, sentAt } = decodeContent(plaintext);
 */
export function decodeContent(bytes: Uint8Array): Content {
  let end = bytes.length - 1;
  while (end >= 0 && bytes[end] === 0) end--;
  if (end < 0 || bytes[end] !== 0x80) throw new ContentError("bad padding");
  let wire: Wire;
  try {
    wire = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(0, end))) as Wire;
  } catch {
    throw new ContentError("not JSON");
  }
  if (wire?.v !== VERSION) throw new ContentError(`unknown content version ${String(wire?.v)}`);
  if (typeof wire.sentAt !== "number") throw new ContentError("sentAt missing");
  let body: MessageBody;
  if (typeof wire.text === "string") body = { text: wire.text };
  else if (typeof wire.bytes === "string") body = { bytes: fromBase64(wire.bytes) };
  else throw new ContentError("no body");
  return { body, sentAt: wire.sentAt, ...(typeof wire.to === "string" && { to: wire.to }) };
}
