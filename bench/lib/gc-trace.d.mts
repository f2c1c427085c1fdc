/** Types of gc-trace.mjs (see there). */
export interface GcEvent {
  /** Wall-clock ms when the collection's line was printed (its end). */
  at: number;
  kind: "young" | "full";
  pauseMs: number;
}
export interface GcSummary {
  young: number;
  young_max_ms: number;
  full: number;
  full_max_ms: number;
  pause_ms: number;
}
export function gcTraceEnv(logFile: string): Promise<Record<string, string>>;
export function parseGcLine(line: string): GcEvent | null;
export function summarizeGc(events: readonly GcEvent[], fromMs: number, toMs: number): GcSummary;
export function readGcLog(logFile: string): GcEvent[];
export function describeGc(sum: GcSummary): string;
