/**
 * Latency histograms: HdrHistogram (hdr-histogram-js) in microseconds, 3 significant digits. Load workers
 * record into their own histograms and send them encoded; the orchestrator merges them.
 */
import hdr from "hdr-histogram-js";

/** A fresh histogram of microseconds (1 µs to 1 hour, auto-resizing past it). */
export function newHistogram() {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3, autoResize: true });
}

/** Records `ms` (a latency in milliseconds, fractional) into `h`. */
export function recordMs(h, ms) {
  h.recordValue(Math.max(1, Math.round(ms * 1000)));
}

export function encode(h) {
  return hdr.encodeIntoCompressedBase64(h);
}

/** Merges encoded histograms into one. */
export function merge(encoded) {
  const total = newHistogram();
  for (const e of encoded) if (e) total.add(hdr.decodeFromCompressedBase64(e));
  return total;
}

const round = (v) => Math.round(v * 100) / 100;

/** p50/p99/p99.9/max in milliseconds (null when empty). */
export function summary(h) {
  if (!h || h.totalCount === 0) return { n: 0, p50: null, p99: null, p999: null, max: null };
  const at = (p) => round(h.getValueAtPercentile(p) / 1000);
  return { n: h.totalCount, p50: at(50), p99: at(99), p999: at(99.9), max: round(h.maxValue / 1000) };
}

/** The percentile curve for an HDR chart: [percentile, ms] at 0, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99, 100. */
export function curve(h) {
  if (!h || h.totalCount === 0) return [];
  return [0, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99, 100].map((p) => [p, round((p === 100 ? h.maxValue : h.getValueAtPercentile(p)) / 1000)]);
}
