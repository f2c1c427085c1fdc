#!/usr/bin/env node
/**
 * `npm start`: the whole system locally on wrangler dev (workerd with embedded D1 and Durable Objects).
 * 1. Creates a local token-signing key in .dev.vars on first run (git-ignored; never committed).
 * 2. Applies the D1 migrations to the local database.
 * 3. Runs `wrangler dev`, passing any extra arguments through (e.g. `npm start -- --port 9000 --persist-to /dev/shm/relay`).
 */
import { spawn, spawnSync } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { existsSync, readFileSync, appendFileSync } from "node:fs";

const args = process.argv.slice(2);
const devVars = new URL("../.dev.vars", import.meta.url);

if (!existsSync(devVars) || !readFileSync(devVars, "utf8").includes("TOKEN_SIGNING_KEY=")) {
  const pem = generateKeyPairSync("ed25519").privateKey.export({ format: "pem", type: "pkcs8" }).toString();
  appendFileSync(devVars, `TOKEN_SIGNING_KEY="${pem.trim().replace(/\n/g, "\\n")}"\n`, { mode: 0o600 });
  console.log("Created a local token-signing key in .dev.vars");
}

const persistAt = args.indexOf("--persist-to");
const persist = persistAt >= 0 ? ["--persist-to", args[persistAt + 1]] : [];
const migrate = spawnSync("wrangler", ["d1", "migrations", "apply", "DB", "--local", ...persist], {
  stdio: ["ignore", "inherit", "inherit"],
  env: { ...process.env, CI: "true" }, // no interactive confirmation
});
if (migrate.status !== 0) process.exit(migrate.status ?? 1);

const dev = spawn("wrangler", ["dev", "--ip", "127.0.0.1", ...args], { stdio: "inherit" });
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => dev.kill(signal));
dev.on("exit", (code) => process.exit(code ?? 0));
