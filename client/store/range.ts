/** Key-range arithmetic shared by the store implementations. */
import type { KeyRange } from "./types";

/** A character above every character the SDK uses in keys: the upper bound of a prefix. */
export const KEY_MAX_CHAR = "\uffff";

/**
 * The lower (inclusive unless `lowerOpen`) and exclusive upper bounds a {@link KeyRange} stands for (undefined: unbounded).
 * @example
 * bounds({ prefix: "a|" }); // { lower: "a|", lowerOpen: false, upper: "a|\uffff" }
 */
export function bounds(range: KeyRange = {}): { lower?: string; lowerOpen: boolean; upper?: string } {
  let lower: string | undefined = range.prefix;
  let lowerOpen = false;
  if (range.after !== undefined && (lower === undefined || range.after >= lower)) {
    lower = range.after;
    lowerOpen = true;
  }
  let upper = range.prefix !== undefined ? range.prefix + KEY_MAX_CHAR : undefined;
  if (range.before !== undefined && (upper === undefined || range.before < upper)) upper = range.before;
  return { lower, lowerOpen, upper };
}

/**
 * Whether `key` lies within `range`.
 * @example
 * inRange("a|2", { prefix: "a|", after: "a|1" }); // true
 */
export function inRange(key: string, range: KeyRange = {}): boolean {
  const { lower, lowerOpen, upper } = bounds(range);
  if (lower !== undefined && (lowerOpen ? key <= lower : key < lower)) return false;
  if (upper !== undefined && key >= upper) return false;
  return true;
}
