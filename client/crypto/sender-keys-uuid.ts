/**
 * UUIDs as Signal's wire formats carry them: 16 raw bytes (RFC 9562 byte order), shown as the canonical
 * lowercase 8-4-4-4-12 hex string (the form libsignal's JS API uses for distribution ids).
 */
import { bytesToHex, hexToBytes } from "@noble/hashes/utils.js";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Whether `text` is a UUID in 8-4-4-4-12 hex form (any case, any version). */
export function isUuid(text: string): boolean {
  return typeof text === "string" && UUID.test(text);
}

/** The 16 bytes of a UUID string (8-4-4-4-12 hex, any case); throws `TypeError` on anything else. */
export function uuidToBytes(uuid: string): Uint8Array<ArrayBuffer> {
  if (!isUuid(uuid)) throw new TypeError(`not a UUID: ${JSON.stringify(uuid)}`);
  return Uint8Array.from(hexToBytes(uuid.replace(/-/g, "")));
}

/** The canonical lowercase string of a 16-byte UUID; throws `TypeError` unless given exactly 16 bytes. */
export function uuidFromBytes(bytes: Uint8Array): string {
  if (!(bytes instanceof Uint8Array) || bytes.length !== 16) throw new TypeError(`a UUID is 16 bytes, got ${bytes?.length}`);
  const hex = bytesToHex(bytes);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
