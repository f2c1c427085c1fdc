/**
 * The plaintext inside every 1:1 ciphertext (and inside group messages and channel posts): a small versioned
 * JSON document, padded as Signal pads (0x80 then zeros up to a multiple of 160 bytes) so ciphertext lengths
 * say little about the text. The server never sees it; only SDK instances read it.
 *
 * Two kinds: a message ({@link Content}), and a sender-key distribution ({@link SenderKeyContent}) that a group
 * member's device sends over the pairwise session so that its group messages can be read.
 */
import { fromBase64, toBase64 } from "../../src/protocol/base64";
import type { MessageBody } from "./types";

/** What one ciphertext carries. */
export interface Content {
  /** The message body. */
  body: MessageBody;
  /** The sender's compose time. */
  sentAt: number;
  /** Sync copies: the user the message was sent to (the conversation it belongs to). Group messages: the group id. */
  to?: string;
}

/** A libsignal SenderKeyDistributionMessage for one group, sent over a pairwise session. */
export interface SenderKeyContent {
  senderKey: {
    /** The group the sender key is for. */
    group: string;
    /** The serialized SenderKeyDistributionMessage. */
    message: Uint8Array;
  };
  sentAt: number;
}

/** A decoded plaintext: a message or a sender-key distribution. */
export type DecodedPlaintext = { kind: "message"; content: Content } | { kind: "senderKey"; content: SenderKeyContent };

const VERSION = 1;
const PAD_BLOCK = 160;

interface Wire {
  v: number;
  text?: string;
  bytes?: string;
  sentAt: number;
  to?: string;
  /** Sender-key distributions: the group and the message (base64). */
  group?: string;
  sk?: string;
}

/**
 * A content document could not be read (wrong version, bad padding, bad JSON).
 * @example
 * try { decodeContent(bytes); } catch (e) { if (e instanceof ContentError) skip(); }
 */
export class ContentError extends Error {
  override name = "ContentError";
}

function pad(wire: Wire): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(wire));
  const padded = new Uint8Array(Math.ceil((json.length + 1) / PAD_BLOCK) * PAD_BLOCK);
  padded.set(json);
  padded[json.length] = 0x80;
  return padded;
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
  return pad(wire);
}

/**
 * Encodes and pads a sender-key distribution.
 * @example
 * const plaintext = encodeSenderKeyContent({ senderKey: { group: groupId, message: skdm }, sentAt: Date.now() });
 */
export function encodeSenderKeyContent(content: SenderKeyContent): Uint8Array {
  return pad({ v: VERSION, sentAt: content.sentAt, group: content.senderKey.group, sk: toBase64(content.senderKey.message) });
}

/**
 * Reads either kind of content document; throws {@link ContentError} on anything else.
 * @example
 * const decoded = decodePlaintext(plaintext);
 * if (decoded.kind === "senderKey") await processSenderKeyDistributionMessage(sender, decoded.content.senderKey.message, store);
 */
export function decodePlaintext(bytes: Uint8Array): DecodedPlaintext {
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
  if (typeof wire.sk === "string") {
    if (typeof wire.group !== "string") throw new ContentError("sender key without a group");
    return { kind: "senderKey", content: { senderKey: { group: wire.group, message: fromBase64(wire.sk) }, sentAt: wire.sentAt } };
  }
  let body: MessageBody;
  if (typeof wire.text === "string") body = { text: wire.text };
  else if (typeof wire.bytes === "string") body = { bytes: fromBase64(wire.bytes) };
  else throw new ContentError("no body");
  return { kind: "message", content: { body, sentAt: wire.sentAt, ...(typeof wire.to === "string" && { to: wire.to }) } };
}

/**
 * Reads {@link encodeContent}'s bytes; throws {@link ContentError} on anything else (a sender-key distribution too).
 * @example
 * const { body, sentAt } = decodeContent(plaintext);
 */
export function decodeContent(bytes: Uint8Array): Content {
  const decoded = decodePlaintext(bytes);
  if (decoded.kind !== "message") throw new ContentError("not a message");
  return decoded.content;
}
