#!/usr/bin/env node
/**
 * The message spine under load: the seed of the benchmark harness, now a thin entry into it.
 *
 *   npm exec -- node bench/spine-load.mjs [--quick] [--storage tmpfs|disk|both] [--no-pin]
 *
 * Runs bench/run.mjs against Relay alone (on workerd, load sent straight to the user worker: no dev proxy)
 * with the spine's three workloads: durable 1:1 open-loop steps (workloads 1 and 2), backlog drain (3) and
 * idle authenticated sockets (5); once per storage kind (both: tmpfs, then disk). Results, Markdown and
 * charts go to bench/results/spine/. For Relay against the peers, use `npm run bench`.
 */
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const { values: flags } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    storage: { type: "string", default: "both" },
    "no-pin": { type: "boolean", default: false },
  },
  strict: true,
});
const storages = flags.storage === "both" ? ["tmpfs", "disk"] : [flags.storage];
let status = 0;
for (const storage of storages) {
  const args = [
    join(ROOT, "bench", "run.mjs"),
    "--targets", "relay-workerd",
    "--workloads", "1,2,3,5",
    "--storage", storage,
    "--out", join(ROOT, "bench", "results", "spine"),
    ...(flags.quick ? ["--quick"] : []),
    ...(flags["no-pin"] ? ["--no-pin"] : []),
  ];
  const run = spawnSync(process.execPath, args, { cwd: ROOT, stdio: "inherit", env: { ...process.env, X_LOCAL_OBSERVABILITY: "false" } });
  status ||= run.status ?? 1;
}
process.exit(status);
