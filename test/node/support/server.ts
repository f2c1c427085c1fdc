/**
 * Runs the real `npm start` (wrangler dev on workerd) for end-to-end tests from Node, with a local
 * stand-in for Twilio that records every SMS so tests can read verification codes.
 *
 * The server runs in its own process group and is stopped as a group: killing only wrangler would
 * leave its workerd children behind (RUNTIME-NOTES.md).
 *
 * @example
 * const relay = await startRelay();
 * await fetch(`${relay.url}/v1/health`);
 * await relay.stop();
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer as createHttpServer, type Server } from "node:http";
import { createServer as createNetServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { CapturedSms } from "../../../src/auth/sms/capture";

export type { CapturedSms };

export interface RelayServer {
  /** `http://127.0.0.1:PORT` */
  url: string;
  /** Every SMS the server sent through the Twilio stand-in, oldest first. */
  sms: CapturedSms[];
  /** Stops the whole process group and waits for it to be gone; removes the state directory it created. */
  stop(): Promise<void>;
}

const ROOT = fileURLToPath(new URL("../../..", import.meta.url));
const READY_TIMEOUT_MS = 90_000;
const STOP_TIMEOUT_MS = 15_000;
const LOG_LINES = 200;

/** A port that was free a moment ago on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A local server answering Twilio's Messages API: records {to, text} and replies 201 as Twilio does. */
export async function startSmsCapture(): Promise<{ url: string; sms: CapturedSms[]; close(): Promise<void> }> {
  const sms: CapturedSms[] = [];
  const server: Server = createHttpServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (chunk: string) => (body += chunk));
    req.on("end", () => {
      if (req.method !== "POST" || !/\/Messages\.json$/.test(req.url ?? "")) {
        res.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify({ code: 20404 }));
        return;
      }
      const form = new URLSearchParams(body);
      sms.push({ to: form.get("To") ?? "", text: form.get("Body") ?? "" });
      res.writeHead(201, { "content-type": "application/json" });
      res.end(JSON.stringify({ sid: `SM${sms.length}`, status: "queued" }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    sms,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Whether any process of group `pgid` is still around (zombies included). */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitUntil(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (condition()) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return condition();
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // already gone
  }
}

/**
 * Starts Relay with `npm start` on a free port, state in a fresh temporary directory (or `persistTo`),
 * SMS through Twilio's API pointed at a local capture server. Resolves once GET /v1/health answers.
 */
export async function startRelay(opts: { persistTo?: string; args?: string[] } = {}): Promise<RelayServer> {
  const capture = await startSmsCapture();
  const ownDir = opts.persistTo === undefined;
  const persistTo = opts.persistTo ?? (await mkdtemp(join(tmpdir(), "relay-e2e-")));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const log: string[] = [];
  const remember = (chunk: Buffer) => {
    log.push(...chunk.toString("utf8").split("\n").filter(Boolean));
    if (log.length > LOG_LINES) log.splice(0, log.length - LOG_LINES);
  };

  const child: ChildProcess = spawn(
    "npm",
    [
      "start",
      "--",
      "--port", String(port),
      "--persist-to", persistTo,
      "--var", "SMS_PROVIDER:twilio",
      "--var", `TWILIO_API_BASE:${capture.url}`,
      "--var", "TWILIO_ACCOUNT_SID:ACtest",
      "--var", "TWILIO_AUTH_TOKEN:test",
      "--var", "TWILIO_FROM:+15005550006",
      ...(opts.args ?? []),
    ],
    { cwd: ROOT, detached: true, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, CI: "true" } },
  );
  child.stdout?.on("data", remember);
  child.stderr?.on("data", remember);
  const pgid = child.pid!;
  let exited: { code: number | null; signal: string | null } | undefined;
  const exit = new Promise<void>((resolve) =>
    child.once("exit", (code, signal) => {
      exited = { code, signal };
      resolve();
    }),
  );

  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      signalGroup(pgid, "SIGTERM");
      if (!(await waitUntil(() => exited !== undefined && !groupAlive(pgid), STOP_TIMEOUT_MS))) {
        signalGroup(pgid, "SIGKILL");
        await waitUntil(() => !groupAlive(pgid), STOP_TIMEOUT_MS);
      }
      await Promise.race([exit, new Promise((resolve) => setTimeout(resolve, 1000))]);
      child.stdout?.destroy();
      child.stderr?.destroy();
      await capture.close();
      if (ownDir) await rm(persistTo, { recursive: true, force: true });
    })());

  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (exited) {
      await stop();
      throw new Error(`npm start exited (${JSON.stringify(exited)}) before it was ready:\n${log.join("\n")}`);
    }
    try {
      const res = await fetch(`${url}/v1/health`, { signal: AbortSignal.timeout(2000) });
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`Relay did not answer GET /v1/health within ${READY_TIMEOUT_MS} ms:\n${log.join("\n")}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }

  return { url, sms: capture.sms, stop };
}
