#!/usr/bin/env node
/** Prints Relay's limits (src/protocol/limits.ts) as the Markdown table the README shows. */
import { readFileSync } from "node:fs";
import { LIMITS, RATE_LIMITS } from "../src/protocol/limits.ts";

const source = readFileSync(new URL("../src/protocol/limits.ts", import.meta.url), "utf8");

/** The doc comment above `name` in limits.ts (the first one, for limits sharing a comment). */
function describe(name) {
  const lines = source.split("\n");
  const at = lines.findIndex((l) => new RegExp(`^\\s*${name}:`).test(l));
  for (let i = at - 1; i >= 0; i--) {
    const doc = /\/\*\*\s*(.*?)\s*\*\//.exec(lines[i]);
    if (doc) return doc[1];
  }
  return "";
}

function human(name, value) {
  if (typeof value === "object") return `${value.max} per ${human("windowMs", value.windowMs)}`;
  if (/Ms$/.test(name)) return value % 86_400_000 === 0 ? `${value / 86_400_000} d` : value % 60_000 === 0 ? `${value / 60_000} min` : `${value} ms`;
  if (/Seconds$/.test(name)) return `${value / 60} min`;
  if (/Bytes$/.test(name)) return `${value / 1024} KiB`;
  return String(value);
}

export function limitsTable() {
  const rows = [...Object.entries(LIMITS), ...Object.entries(RATE_LIMITS)].map(
    ([name, value]) => `| \`${name}\` | ${human(name, value)} | ${describe(name)} |`,
  );
  return ["| limit | value | meaning |", "|---|---|---|", ...rows].join("\n");
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(limitsTable());
