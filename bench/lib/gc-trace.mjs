/**
 * `npm run bench -- --gc-trace`: V8's garbage-collection trace of every workerd target, summed up per row.
 *
 * miniflare passes `MINIFLARE_WORKERD_V8_FLAGS` to workerd and starts the binary named by `MINIFLARE_WORKERD_PATH`;
 * that is `workerd-gc-trace.sh`, which runs the real workerd with its output line-buffered and copies each GC line,
 * stamped with the wall-clock time it was printed (the end of the pause), to a log. `--trace-gc` only prints: the
 * collector behaves as without it. A row's window then says how many young (scavenge) and full (mark-compact)
 * collections paused the server, and for how long.
 */
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const WRAPPER = fileURLToPath(new URL("./workerd-gc-trace.sh", import.meta.url));

/** The environment that makes a wrangler-started workerd log its collections to `logFile`. */
export async function gcTraceEnv(logFile) {
  // The package is CommonJS: its `default` export (the binary's path) is one level down from ESM.
  const workerd = await import("workerd");
  const workerdBin = typeof workerd.default === "string" ? workerd.default : workerd.default.default;
  return {
    MINIFLARE_WORKERD_V8_FLAGS: "--trace-gc",
    MINIFLARE_WORKERD_PATH: WRAPPER,
    RELAY_BENCH_WORKERD_BIN: workerdBin,
    RELAY_BENCH_GC_LOG: logFile,
  };
}

/**
 * One collection from a stamped `--trace-gc` line, e.g.
 * `1795948445412 [8375:0x30fdbfca0000]    12439 ms: Mark-Compact 34.1 (45.7) -> 7.1 (45.7) MB, pooled: 0.0 MB, 52.52 / 0.00 ms …`
 */
export function parseGcLine(line) {
  const m = /^(\d+(?:\.\d+)?) .*?\d+ ms: (Scavenge|Minor Mark-Sweep|Mark-Compact|Mark-Sweep)\b.*?MB, (?:pooled: [\d.]+ MB, )?([\d.]+) \/ [\d.]+ ms/.exec(line);
  if (!m) return null;
  const full = m[2] === "Mark-Compact" || m[2] === "Mark-Sweep";
  return { at: Number(m[1]), kind: full ? "full" : "young", pauseMs: Number(m[3]) };
}

/** Collections that ended within [fromMs, toMs], summed up: counts, longest and total pause per kind. */
export function summarizeGc(events, fromMs, toMs) {
  const sum = { young: 0, young_max_ms: 0, full: 0, full_max_ms: 0, pause_ms: 0 };
  for (const e of events) {
    if (e.at < fromMs || e.at > toMs) continue;
    sum[e.kind]++;
    sum[`${e.kind}_max_ms`] = Math.max(sum[`${e.kind}_max_ms`], e.pauseMs);
    sum.pause_ms += e.pauseMs;
  }
  sum.pause_ms = Math.round(sum.pause_ms * 10) / 10;
  return sum;
}

/** The collections logged so far to `logFile` (none when the file does not exist yet). */
export function readGcLog(logFile) {
  if (!existsSync(logFile)) return [];
  return readFileSync(logFile, "utf8").split("\n").map(parseGcLine).filter((e) => e !== null);
}

/** "GC: 14 young (max 9.1 ms), 1 full (max 68 ms)", for a row's progress line. */
export function describeGc(sum) {
  const kind = (n, name, max) => `${n} ${name}${n ? ` (max ${max} ms)` : ""}`;
  return `GC: ${kind(sum.young, "young", sum.young_max_ms)}, ${kind(sum.full, "full", sum.full_max_ms)}`;
}
