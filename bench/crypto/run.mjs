#!/usr/bin/env node
/**
 * Bundles bench/crypto/speed.ts (the SDK is TypeScript) and runs it in a child process; prints its rows.
 * `--n N`: operations per measurement (default 300). Used by `npm run bench`; runnable alone.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { build } from "esbuild";

const root = new URL("../..", import.meta.url).pathname;
const out = `${root}bench/.build/crypto-speed.mjs`;
mkdirSync(`${root}bench/.build`, { recursive: true });
await build({ entryPoints: [`${root}bench/crypto/speed.ts`], bundle: true, platform: "node", format: "esm", packages: "external", outfile: out, logLevel: "error" });

/** Runs the crypto speed comparison and returns its rows. */
export function cryptoRows(n = 300) {
  const output = execFileSync(process.execPath, [out, "--n", String(n)], { cwd: root, encoding: "utf8", maxBuffer: 1 << 24 });
  return output.trim().split("\n").map((line) => JSON.parse(line));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const n = Number(process.argv[process.argv.indexOf("--n") + 1]) || 300;
  for (const r of cryptoRows(n)) console.log(`${r.peer.padEnd(10)} ${r.params.op.padEnd(28)} ${String(r.throughput).padStart(9)} ops/s  p50 ${r.latency_ms.p50} ms  p99 ${r.latency_ms.p99} ms`);
}
