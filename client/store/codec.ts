/**
 * Records as JSON text for stores that keep strings (SQLite): `Uint8Array`s become `{"$bytes":"<base64>"}`.
 */
import { fromBase64, toBase64 } from "../../src/protocol/base64";

/**
 * Serializes a record to JSON, keeping byte arrays.
 * @example
 * decodeRecord(encodeRecord({ key: new Uint8Array([1, 2]) })); // { key: Uint8Array [1, 2] }
 */
export function encodeRecord(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => (v instanceof Uint8Array ? { $bytes: toBase64(v) } : v));
}

/**
 * Parses {@link encodeRecord}'s text.
 * @example
 * const record = decodeRecord(row.value);
 */
export function decodeRecord<T = unknown>(text: string): T {
  return JSON.parse(text, (_key, v: unknown) => {
    if (v !== null && typeof v === "object" && !Array.isArray(v)) {
      const bytes = (v as { $bytes?: unknown }).$bytes;
      if (typeof bytes === "string" && Object.keys(v).length === 1) return fromBase64(bytes);
    }
    return v;
  }) as T;
}
