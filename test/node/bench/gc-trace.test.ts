/** `npm run bench -- --gc-trace`: V8's stamped collection lines, summed up for a row's window. */
import { describe, expect, it } from "vitest";
import { describeGc, parseGcLine, summarizeGc } from "../../../bench/lib/gc-trace.mjs";

// Lines as workerd 1.20261117 prints them with --trace-gc, stamped by bench/lib/workerd-gc-trace.sh.
const young = (at: number, pause: string) =>
  `${at} [8375:0x30fdbfca0000]     5044 ms: Scavenge 22.8 (26.7) -> 17.0 (26.9) MB, pooled: 0.0 MB, ${pause} / 0.00 ms (average mu = 1.000, current mu = 1.000) allocation failure; `;
const full = (at: number, pause: string) =>
  `${at} [8375:0x30fdbfca0000]    12648 ms: Mark-Compact 37.0 (45.4) -> 7.2 (45.4) MB, pooled: 0.0 MB, ${pause} / 0.00 ms (average mu = 0.995, current mu = 0.995) allocation limit; GC in old space requested`;

describe("gc-trace", () => {
  it("reads the kind, pause and time of each collection and ignores other output", () => {
    expect(parseGcLine(young(1_000, "6.85"))).toEqual({ at: 1_000, kind: "young", pauseMs: 6.85 });
    expect(parseGcLine(full(2_000, "68.19"))).toEqual({ at: 2_000, kind: "full", pauseMs: 68.19 });
    expect(parseGcLine('{"timestamp":1795948445412,"level":"log","message":"ready"}')).toBeNull();
  });

  it("sums up the collections that ended within a window", () => {
    const events = [young(900, "2.0"), young(1_000, "6.85"), full(1_500, "68.19"), young(1_900, "9.5"), young(2_100, "30")].map((l) => parseGcLine(l)!);
    const sum = summarizeGc(events, 1_000, 2_000);
    expect(sum).toEqual({ young: 2, young_max_ms: 9.5, full: 1, full_max_ms: 68.19, pause_ms: 84.5 });
    expect(describeGc(sum)).toBe("GC: 2 young (max 9.5 ms), 1 full (max 68.19 ms)");
    const none = summarizeGc(events, 3_000, 4_000);
    expect(none).toEqual({ young: 0, young_max_ms: 0, full: 0, full_max_ms: 0, pause_ms: 0 });
    expect(describeGc(none)).toBe("GC: 0 young, 0 full");
  });
});
