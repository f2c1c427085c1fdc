/**
 * Structured logs: one JSON line per request, connection or frame class, with its outcome and duration.
 * Never pass a token, code, phone number or ciphertext here.
 */
export type LogLevel = "debug" | "info" | "silent";

const RANK: Record<LogLevel, number> = { debug: 0, info: 1, silent: 2 };

export interface Logger {
  debug(event: string, fields?: Record<string, unknown>): void;
  info(event: string, fields?: Record<string, unknown>): void;
  enabled(level: LogLevel): boolean;
}

/** A logger printing at `level` and above (`LOG_LEVEL` var: debug, info or silent; default info). */
export function logger(level: string | undefined): Logger {
  const min = RANK[(level as LogLevel) in RANK ? (level as LogLevel) : "info"];
  const write = (lvl: LogLevel, event: string, fields?: Record<string, unknown>) => {
    if (RANK[lvl] >= min) console.log(JSON.stringify({ level: lvl, event, ...fields }));
  };
  return {
    debug: (event, fields) => write("debug", event, fields),
    info: (event, fields) => write("info", event, fields),
    enabled: (lvl) => RANK[lvl] >= min,
  };
}
