#!/usr/bin/env node
/**
 * Runs a Worker on workerd under wrangler's programmatic API (`unstable_startWorker`) and reports, over IPC,
 * the user worker's own URL (the `reloadComplete` event's `proxyData.userWorkerUrl`: load sent there skips
 * wrangler's dev proxy) and the proxy's URL. Started by bench/run.mjs in its own process group.
 *
 *   node bench/lib/workerd-server.mjs --config wrangler.toml --persist DIR [--migrate] --bindings '{"NAME":{"type":…}}'
 * --migrate applies the D1 migrations (`wrangler d1 migrations apply DB --local`) first.
 */
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const WRANGLER_BIN = join(ROOT, "node_modules", "wrangler", "bin", "wrangler.js");

const { values: flags } = parseArgs({
  options: {
    config: { type: "string" },
    persist: { type: "string" },
    migrate: { type: "boolean", default: false },
    bindings: { type: "string", default: "{}" },
  },
});

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms))),
  ]);
}

async function main() {
  if (flags.migrate) {
    const migrate = spawnSync(process.execPath, [WRANGLER_BIN, "d1", "migrations", "apply", "DB", "--local", "--persist-to", flags.persist], {
      cwd: dirname(flags.config),
      env: { ...process.env, CI: "true" },
      encoding: "utf8",
    });
    if (migrate.status !== 0) throw new Error(`migrations failed:\n${migrate.stdout}\n${migrate.stderr}`);
  }
  const { unstable_startWorker } = await import("wrangler");
  const worker = await unstable_startWorker({
    config: flags.config,
    bindings: JSON.parse(flags.bindings),
    dev: {
      remote: false,
      server: { hostname: "127.0.0.1", port: 0 },
      // RELAY_BENCH_INSPECTOR_PORT: open the DevTools inspector (for a CPU profile of the server under load).
      inspector: process.env.RELAY_BENCH_INSPECTOR_PORT ? { port: Number(process.env.RELAY_BENCH_INSPECTOR_PORT) } : false,
      persist: flags.persist,
      watch: false,
      liveReload: false,
    },
  });
  // Bundling and the runtime start after startWorker resolves, so the first reloadComplete is still ahead.
  const reloaded = new Promise((resolve) => worker.raw.once("reloadComplete", resolve));
  await worker.ready;
  const event = await withTimeout(reloaded, 60_000, "reloadComplete");
  const { protocol, hostname, port } = event.proxyData.userWorkerUrl;
  process.send({ type: "ready", userWorkerUrl: `${protocol}//${hostname}:${port}`, proxyUrl: (await worker.url).origin });
  const stop = async () => {
    await withTimeout(worker.dispose(), 15_000, "dispose").catch(() => undefined);
    process.exit(0);
  };
  process.on("message", (message) => message?.cmd === "stop" && void stop());
  process.on("disconnect", () => void stop());
  process.on("SIGTERM", () => void stop());
}

main().catch((error) => {
  process.send?.({ type: "error", error: String(error?.stack ?? error) });
  process.exit(1);
});
