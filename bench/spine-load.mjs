#!/usr/bin/env node
/**
 * The message spine under load: the seed of the benchmark harness.
 *
 *   npm exec -- node bench/spine-load.mjs [--quick] [--storage tmpfs|disk|both] [--no-pin]
 *
 * Starts Relay with wrangler's programmatic API (`unstable_startWorker`, D1 migrations applied first),
 * sends load straight to the user worker's own URL (the `reloadComplete` event's `proxyData.userWorkerUrl`:
 * no dev proxy), with local observability off, the server on core 0 and the load generator (two child
 * processes, and this orchestrator) on core 1. Runs every workload with state on tmpfs and on disk:
 *
 *   (a) durable 1:1: sender/recipient pairs, open loop at fixed rates stepped up; latency from each message's
 *       scheduled send time to the recipient's receipt of the envelope (the recipient acks every page), and
 *       to the sender's `sent` acknowledgement;
 *   (b) backlog drain: messages queued for an offline device, then the time from connect until all are
 *       received and acked, checked for missing, duplicated or out-of-order envelopes;
 *   (c) idle connections: authenticated sockets held open; server RSS per connection and CPU while idle.
 *
 * Prints a table with the four settings of ../shared/RUNTIME-NOTES.md beside every figure and writes
 * bench/results/spine-<timestamp>.json. Bounded: the full run stops itself within 5 minutes.
 *
 * Roles (internal): `--role server` runs wrangler, `--role load` runs a load worker; both are this file.
 */
/* global fetch, performance, AbortSignal, Buffer, setImmediate, URLSearchParams */
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const SELF = fileURLToPath(import.meta.url);
const WRANGLER_BIN = join(ROOT, "node_modules", "wrangler", "bin", "wrangler.js");
const RESULTS_DIR = join(ROOT, "bench", "results");

/** The environment of every wrangler invocation (RUNTIME-NOTES.md: local observability off). */
const WRANGLER_ENV = {
  CLOUDFLARE_CF_FETCH_ENABLED: "false",
  WRANGLER_SEND_METRICS: "false",
  DO_NOT_TRACK: "1",
  WRANGLER_HIDE_BANNER: "true",
  X_LOCAL_OBSERVABILITY: "false",
};
Object.assign(process.env, WRANGLER_ENV);

const { values: flags } = parseArgs({
  options: {
    role: { type: "string", default: "orchestrator" },
    quick: { type: "boolean", default: false },
    storage: { type: "string", default: "both" },
    pin: { type: "boolean", default: true },
    "no-pin": { type: "boolean", default: false },
    persist: { type: "string" },
    twilio: { type: "string" },
    index: { type: "string", default: "0" },
    rates: { type: "string" },
    "step-ms": { type: "string" },
    pairs: { type: "string" },
  },
  strict: true,
});

const PROFILES = {
  full: {
    budgetMs: 290_000,
    pairs: 50,
    rates: [250, 500, 750, 1000, 1250, 1500],
    /** On disk every Durable Object commit is an fsync: the ladder starts lower (it stops where latency explodes). */
    diskRates: [100, 250, 500, 750, 1000, 1250, 1500],
    stepMs: 5_000,
    drainMs: 5_000,
    backlog: 10_000,
    idleSockets: 1_000,
    idleWindowMs: 5_000,
    reserveMs: 30_000,
  },
  quick: {
    budgetMs: 150_000,
    pairs: 20,
    rates: [250, 750, 1500],
    diskRates: [100, 250, 750],
    stepMs: 1_500,
    drainMs: 3_000,
    backlog: 2_000,
    idleSockets: 200,
    idleWindowMs: 2_000,
    reserveMs: 12_000,
  },
};

/** Rate limits replaced for this run through the server's `RATE_LIMIT_OVERRIDES` var (all users come from one IP). */
const RATE_LIMIT_OVERRIDES = {
  codePerIp: { max: 1_000_000, windowMs: 3_600_000 },
  verifyPerIp: { max: 1_000_000, windowMs: 3_600_000 },
};

/** CPUs of the machine, read before this process pins itself (affinity shrinks what Node reports). */
const MACHINE_CPUS = availableParallelism();
const LOAD_WORKERS = 2;
/** Width of the buckets of the per-step latency timeline (worst delivery latency of messages scheduled in each). */
const TIMELINE_MS = 500;
const BODY = randomBytes(96).toString("base64"); // a short text message's ciphertext: 128 base64 characters

/** Server process groups still running (killed on any exit of the orchestrator). */
const liveServerGroups = new Set();

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
    }),
  ]);
}

// ───────────────────────────── role: server ─────────────────────────────

/** Runs Relay under wrangler's programmatic API and reports the user worker's own URL to the parent. */
async function runServer() {
  const persist = flags.persist;
  const migrate = spawnSync(process.execPath, [WRANGLER_BIN, "d1", "migrations", "apply", "DB", "--local", "--persist-to", persist], {
    cwd: ROOT,
    env: { ...process.env, CI: "true" },
    encoding: "utf8",
  });
  if (migrate.status !== 0) {
    process.send({ type: "error", error: `migrations failed:\n${migrate.stdout}\n${migrate.stderr}` });
    process.exit(1);
  }
  const tokenKey = generateKeyPairSync("ed25519").privateKey.export({ format: "pem", type: "pkcs8" }).toString();
  const plain = (value) => ({ type: "plain_text", value });
  const { unstable_startWorker } = await import("wrangler");
  const worker = await unstable_startWorker({
    config: join(ROOT, "wrangler.toml"),
    bindings: {
      TOKEN_SIGNING_KEY: { type: "secret_text", value: tokenKey },
      SMS_PROVIDER: plain("twilio"),
      TWILIO_API_BASE: plain(flags.twilio),
      TWILIO_ACCOUNT_SID: plain("ACbench"),
      TWILIO_AUTH_TOKEN: plain("bench"),
      TWILIO_FROM: plain("+15005550006"),
      RATE_LIMIT_OVERRIDES: plain(JSON.stringify(RATE_LIMIT_OVERRIDES)),
    },
    dev: {
      remote: false,
      server: { hostname: "127.0.0.1", port: 0 },
      inspector: false,
      persist,
      watch: false,
      liveReload: false,
    },
  });
  // Bundling and the runtime start after startWorker resolves, so the first reloadComplete is still ahead.
  const reloaded = new Promise((resolve) => worker.raw.once("reloadComplete", resolve));
  await worker.ready;
  const event = await withTimeout(reloaded, 60_000, "reloadComplete");
  const { protocol, hostname, port } = event.proxyData.userWorkerUrl;
  const userWorkerUrl = `${protocol}//${hostname}:${port}`;
  const proxyUrl = (await worker.url).origin;
  process.send({ type: "ready", userWorkerUrl, proxyUrl });
  const stop = async () => {
    await withTimeout(worker.dispose(), 15_000, "dispose").catch(() => undefined);
    process.exit(0);
  };
  process.on("message", (message) => message?.cmd === "stop" && void stop());
  process.on("disconnect", () => void stop());
  process.on("SIGTERM", () => void stop());
}

// ───────────────────────────── role: load worker ─────────────────────────────

/** Opens a device socket; resolves with the socket once `ready` arrives. */
async function openSocket(WebSocket, baseUrl, token, onFrame, timeoutMs = 30_000) {
  const ws = new WebSocket(`${baseUrl.replace(/^http/, "ws")}/v1/connect`, {
    headers: { authorization: `Bearer ${token}` },
    perMessageDeflate: false,
    handshakeTimeout: timeoutMs,
  });
  return withTimeout(
    new Promise((resolve, reject) => {
      ws.once("error", reject);
      ws.once("unexpected-response", (req, res) => {
        req.destroy();
        reject(new Error(`upgrade refused: HTTP ${res.statusCode}`));
      });
      ws.once("close", (code, reason) => reject(new Error(`closed before ready: ${code} ${reason}`)));
      ws.once("message", (data) => {
        const frame = JSON.parse(data.toString());
        if (frame.type !== "ready") return reject(new Error(`first frame ${data}`));
        ws.on("message", (more) => onFrame(JSON.parse(more.toString()), ws));
        resolve({ ws, ready: frame });
      });
    }),
    timeoutMs,
    "connect",
  );
}

/** Runs `fn` over `items` with at most `limit` in flight. */
async function pool(items, limit, fn) {
  const results = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await fn(items[i], i);
      }
    }),
  );
  return results;
}

async function runLoad() {
  const { default: WebSocket } = await import("ws");
  const index = Number(flags.index);
  let idle = [];
  /** Workload (a) state. */
  let pairs = [];
  let inflight = new Map(); // client id → { t: scheduled time, step, acked, delivered }
  let step = null;

  /** Acks every page; records delivery latency of this step's messages. */
  const onRecipientFrame = (frame, ws) => {
    if (frame.type !== "deliver") return;
    const now = performance.now();
    for (const e of frame.envelopes) {
      if (e.kind !== "message") continue;
      const m = inflight.get(e.id);
      if (!m || !step || m.step !== step.index) {
        if (step) step.stray++;
        continue;
      }
      if (m.delivered) step.duplicates++;
      else {
        m.delivered = true;
        step.delivery.push(now - m.t);
        const bucket = Math.floor((m.t - step.t0) / TIMELINE_MS);
        step.timeline[bucket] = Math.max(step.timeline[bucket] ?? 0, now - m.t);
        step.delivered++;
        step.lastDelivery = now;
        if (m.acked) inflight.delete(e.id);
      }
    }
    ws.send(`{"type":"ack","upTo":${frame.envelopes[frame.envelopes.length - 1].seq}}`);
    step?.maybeDone();
  };

  /** Records `sent` latency; acks receipt pages (delivered receipts) so the sender's window stays open. */
  const onSenderFrame = (frame, ws) => {
    if (frame.type === "deliver") {
      if (step) step.receipts += frame.envelopes.filter((e) => e.kind === "receipt").length;
      ws.send(`{"type":"ack","upTo":${frame.envelopes[frame.envelopes.length - 1].seq}}`);
      return;
    }
    if (frame.type === "sent" || frame.type === "error") {
      const m = inflight.get(frame.id);
      if (!m || !step || m.step !== step.index) return;
      if (frame.type === "error") {
        step.errors[frame.code] = (step.errors[frame.code] ?? 0) + 1;
        inflight.delete(frame.id);
        step.failed++;
      } else {
        m.acked = true;
        step.ack.push(performance.now() - m.t);
        step.acked++;
        if (m.delivered) inflight.delete(frame.id);
      }
      step.maybeDone();
    }
  };

  const commands = {
    async idleConnect({ baseUrl, tokens }) {
      const started = performance.now();
      const failures = [];
      const opened = await pool(tokens, 50, (token) =>
        openSocket(WebSocket, baseUrl, token, () => {}).catch((error) => failures.push(String(error.message ?? error))),
      );
      idle = opened.filter((o) => o && o.ws).map((o) => o.ws);
      return { connected: idle.length, failed: failures.length, firstFailure: failures[0], ms: performance.now() - started };
    },

    async idleClose() {
      await Promise.all(
        idle.map((ws) => new Promise((resolve) => (ws.once("close", resolve), ws.close(1000, "done"), setTimeout(resolve, 5000)))),
      );
      const n = idle.length;
      idle = [];
      return { closed: n };
    },

    async pairsConnect({ baseUrl, list }) {
      pairs = await pool(list, 20, async (p) => {
        const sender = await openSocket(WebSocket, baseUrl, p.sender.token, onSenderFrame);
        const recipient = await openSocket(WebSocket, baseUrl, p.recipient.token, onRecipientFrame);
        const prefix = `{"type":"send","id":"`;
        const suffix = `","to":"${p.recipient.userId}","messages":[{"device":1,"registrationId":${p.recipient.registrationId},"type":2,"body":"${BODY}"}]}`;
        return { sender: sender.ws, recipient: recipient.ws, prefix, suffix };
      });
      return { pairs: pairs.length };
    },

    /** One open-loop step: `rate` msg/s from this worker for `durationMs`, then up to `drainMs` for stragglers. */
    async step({ stepIndex, rate, durationMs, drainMs }) {
      const total = Math.round((rate * durationMs) / 1000);
      const interval = 1000 / rate;
      inflight = new Map();
      let resolveDone;
      const done = new Promise((resolve) => (resolveDone = resolve));
      step = {
        index: stepIndex,
        delivery: [],
        ack: [],
        lag: [],
        delivered: 0,
        acked: 0,
        failed: 0,
        duplicates: 0,
        stray: 0,
        receipts: 0,
        errors: {},
        lastDelivery: 0,
        timeline: [],
        t0: 0,
        scheduledAll: false,
        maybeDone() {
          if (this.scheduledAll && this.delivered + this.failed >= total && this.acked + this.failed >= total) resolveDone();
        },
      };
      const s = step;
      const t0 = performance.now() + 20;
      s.t0 = t0;
      let k = 0;
      await new Promise((resolve) => {
        const tick = () => {
          const now = performance.now();
          while (k < total && t0 + k * interval <= now) {
            const t = t0 + k * interval;
            const pair = pairs[k % pairs.length];
            const id = `w${index}s${stepIndex}m${k}`;
            inflight.set(id, { t, step: stepIndex, acked: false, delivered: false });
            s.lag.push(now - t);
            pair.sender.send(pair.prefix + id + pair.suffix);
            k++;
          }
          if (k >= total) return resolve();
          const wait = t0 + k * interval - performance.now();
          if (wait > 1) setTimeout(tick, Math.min(wait, 50) - 0.5);
          else setImmediate(tick);
        };
        tick();
      });
      const sendEnd = performance.now();
      s.scheduledAll = true;
      s.maybeDone();
      await Promise.race([done, sleep(drainMs)]);
      step = null;
      return {
        total,
        delivered: s.delivered,
        acked: s.acked,
        failed: s.failed,
        duplicates: s.duplicates,
        stray: s.stray,
        receipts: s.receipts,
        errors: s.errors,
        spanMs: Math.max(sendEnd, s.lastDelivery) - t0,
        sendSpanMs: sendEnd - t0,
        delivery: s.delivery,
        timeline: Array.from(s.timeline, (v) => v ?? 0),
        ack: s.ack,
        lag: s.lag,
      };
    },

    async pairsClose() {
      const sockets = pairs.flatMap((p) => [p.sender, p.recipient]);
      await Promise.all(
        sockets.map((ws) => new Promise((resolve) => (ws.once("close", resolve), ws.close(1000, "done"), setTimeout(resolve, 5000)))),
      );
      pairs = [];
      return { closed: sockets.length };
    },

    /** Workload (b): `count` messages queued for the offline recipient, then a timed drain on connect. */
    async backlog({ baseUrl, sender, recipient, count, window, timeoutMs }) {
      const deadline = performance.now() + timeoutMs;
      const answers = new Map();
      let errors = 0;
      let receiptsSeen = 0;
      const s = await openSocket(WebSocket, baseUrl, sender.token, (frame, ws) => {
        if (frame.type === "sent" || frame.type === "error") {
          if (frame.type === "error") errors++;
          answers.get(frame.id)?.(frame);
          answers.delete(frame.id);
        } else if (frame.type === "deliver") {
          receiptsSeen += frame.envelopes.filter((e) => e.kind === "receipt").reduce((n, e) => n + e.refs.length, 0);
          ws.send(`{"type":"ack","upTo":${frame.envelopes[frame.envelopes.length - 1].seq}}`);
        }
      });
      const prefix = `{"type":"send","id":"`;
      const suffix = `","to":"${recipient.userId}","messages":[{"device":1,"registrationId":${recipient.registrationId},"type":2,"body":"${BODY}"}]}`;
      const queueStart = performance.now();
      let nextId = 0;
      await Promise.all(
        Array.from({ length: window }, async () => {
          while (nextId < count && performance.now() < deadline) {
            const id = `b${nextId++}`;
            const answer = new Promise((resolve) => answers.set(id, resolve));
            s.ws.send(prefix + id + suffix);
            await withTimeout(answer, 30_000, `sent ${id}`);
          }
        }),
      );
      const queueMs = performance.now() - queueStart;
      if (nextId < count) throw new Error(`queued only ${nextId} of ${count} before the time limit`);

      // Drain: from the moment the connection is opened until every envelope arrived and was acked.
      const received = [];
      let finish;
      const all = new Promise((resolve) => (finish = resolve));
      const connectStart = performance.now();
      let firstAt = 0;
      const r = await openSocket(WebSocket, baseUrl, recipient.token, (frame, ws) => {
        if (frame.type !== "deliver") return;
        if (!firstAt) firstAt = performance.now();
        for (const e of frame.envelopes) received.push({ seq: e.seq, id: e.id, kind: e.kind });
        ws.send(`{"type":"ack","upTo":${frame.envelopes[frame.envelopes.length - 1].seq}}`);
        if (received.length >= count) finish();
      });
      const readyMs = performance.now() - connectStart;
      await withTimeout(all, Math.max(1_000, deadline - performance.now()), `backlog drain (${received.length}/${count})`);
      const drainMs = performance.now() - connectStart;

      // Checks: every id once, in the order sent, seq strictly increasing.
      const ids = received.map((e) => e.id);
      const unique = new Set(ids);
      let outOfOrder = 0;
      for (let i = 1; i < received.length; i++) if (received[i].seq <= received[i - 1].seq) outOfOrder++;
      let idOrderBreaks = 0;
      for (let i = 0; i < ids.length; i++) if (ids[i] !== `b${i}`) idOrderBreaks++;
      const missing = count - [...unique].filter((id) => /^b\d+$/.test(id) && Number(id.slice(1)) < count).length;

      // The acks were durable: a new connection finds nothing pending.
      await new Promise((resolve) => (r.ws.once("close", resolve), r.ws.close(1000, "done")));
      const again = await openSocket(WebSocket, baseUrl, recipient.token, () => {});
      const pendingAfter = again.ready.pending;
      await new Promise((resolve) => (again.ws.once("close", resolve), again.ws.close(1000, "done")));
      await sleep(300); // let delivered receipts reach the sender
      await new Promise((resolve) => (s.ws.once("close", resolve), s.ws.close(1000, "done")));
      return {
        count,
        queueMs,
        errors,
        pendingAtConnect: r.ready.pending,
        readyMs,
        firstPageMs: firstAt - connectStart,
        drainMs,
        received: received.length,
        duplicates: ids.length - unique.size,
        missing,
        outOfOrder,
        idOrderBreaks,
        pendingAfter,
        deliveredReceiptRefs: receiptsSeen,
      };
    },

    async exit() {
      setImmediate(() => process.exit(0));
      return true;
    },
  };

  process.on("message", ({ id, cmd, args }) => {
    commands[cmd](args ?? {}).then(
      (result) => process.send({ id, ok: true, result }),
      (error) => process.send({ id, ok: false, error: String(error?.stack ?? error) }),
    );
  });
  process.on("disconnect", () => process.exit(0));
  process.send({ type: "up", index });
}

// ───────────────────────────── orchestrator ─────────────────────────────

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];
}

function summarize(values) {
  const sorted = Float64Array.from(values).sort();
  const round = (v) => (v === null ? null : Math.round(v * 100) / 100);
  return {
    n: sorted.length,
    p50: round(percentile(sorted, 0.5)),
    p99: round(percentile(sorted, 0.99)),
    p999: round(percentile(sorted, 0.999)),
    max: round(sorted.length ? sorted[sorted.length - 1] : null),
  };
}

/** Every process of group `pgid` (from /proc), with command name and state. */
function groupProcesses(pgid) {
  const out = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const close = stat.lastIndexOf(")");
      const comm = stat.slice(stat.indexOf("(") + 1, close);
      const fields = stat.slice(close + 2).split(" ");
      if (Number(fields[2]) !== pgid) continue;
      out.push({ pid: Number(entry), comm, state: fields[0], utime: Number(fields[11]), stime: Number(fields[12]) });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

function rssKb(pid) {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match ? Number(match[1]) : 0;
  } catch {
    return 0;
  }
}

function cpuTicks(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return 0;
  }
}

/** The pid (among `pids`) that holds the listening socket of 127.0.0.1:`port`. */
function listenerPid(port, pids) {
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  const inodes = new Set();
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text;
    try {
      text = readFileSync(file, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length > 9 && cols[1].endsWith(`:${hexPort}`) && cols[3] === "0A") inodes.add(cols[9]);
    }
  }
  for (const pid of pids) {
    try {
      for (const fd of readdirSync(`/proc/${pid}/fd`)) {
        const link = readlinkSync(`/proc/${pid}/fd/${fd}`);
        const inode = /^socket:\[(\d+)\]$/.exec(link)?.[1];
        if (inode && inodes.has(inode)) return pid;
      }
    } catch {
      // not ours to read, or gone
    }
  }
  return undefined;
}

/** A child process speaking { id, cmd, args } → { id, ok, result | error } over IPC. */
function rpcChild(child, name) {
  let counter = 0;
  const pending = new Map();
  child.on("message", (message) => {
    if (message?.id === undefined) return;
    const waiter = pending.get(message.id);
    pending.delete(message.id);
    if (message.ok) waiter?.resolve(message.result);
    else waiter?.reject(new Error(`${name}: ${message.error}`));
  });
  child.once("exit", (code, signal) => {
    for (const waiter of pending.values()) waiter.reject(new Error(`${name} exited (${code ?? signal})`));
    pending.clear();
  });
  return (cmd, args, timeoutMs = 60_000) =>
    withTimeout(
      new Promise((resolve, reject) => {
        const id = ++counter;
        pending.set(id, { resolve, reject });
        child.send({ id, cmd, args });
      }),
      timeoutMs,
      `${name} ${cmd}`,
    );
}

function canPin() {
  if (!flags.pin || flags["no-pin"]) return { pin: false, why: "disabled by --no-pin" };
  if (availableParallelism() < 2) return { pin: false, why: `only ${availableParallelism()} CPU` };
  try {
    execFileSync("taskset", ["-cp", String(process.pid)], { stdio: "ignore" });
    return { pin: true };
  } catch {
    return { pin: false, why: "taskset not available" };
  }
}

/** Spawns this file in another role, pinned to `core` when pinning is on. */
function spawnRole(role, extra, core, pinning, options = {}) {
  const node = [process.execPath, "--disable-warning=ExperimentalWarning", SELF, "--role", role, ...extra];
  const [command, ...args] = pinning.pin ? ["taskset", "-c", String(core), ...node] : node;
  return spawn(command, args, { cwd: ROOT, env: { ...process.env }, stdio: ["ignore", "pipe", "pipe", "ipc"], ...options });
}

/** Stand-in for Twilio's Messages API: remembers the latest code per phone. */
async function startCapture() {
  const codes = new Map();
  let count = 0;
  const server = createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (chunk) => (body += chunk));
    req.on("end", () => {
      const form = new URLSearchParams(body);
      const code = /(\d{6})/.exec(form.get("Body") ?? "")?.[1];
      if (code) codes.set(form.get("To"), code);
      count++;
      res.writeHead(201, { "content-type": "application/json" }).end(JSON.stringify({ sid: `SM${count}` }));
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${server.address().port}`, codes, count: () => count, close: () => new Promise((r) => server.close(r)) };
}

/** A device registration body built with libsignal (no one-time prekeys: the load needs none). */
async function newDeviceKeys() {
  const { PrivateKey, KEMKeyPair } = await import("@signalapp/libsignal-client");
  const identity = PrivateKey.generate();
  const signedPreKey = PrivateKey.generate().getPublicKey().serialize();
  const kyber = KEMKeyPair.generate().getPublicKey().serialize();
  const b64 = (bytes) => Buffer.from(bytes).toString("base64");
  return {
    registrationId: 1 + Math.floor(Math.random() * 16380),
    identityKey: b64(identity.getPublicKey().serialize()),
    signedPreKey: { keyId: 1, publicKey: b64(signedPreKey), signature: b64(identity.sign(signedPreKey)) },
    kyberLastResortPreKey: { keyId: 1, publicKey: b64(kyber), signature: b64(identity.sign(kyber)) },
    preKeys: [],
    kyberPreKeys: [],
  };
}

async function post(url, body) {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  return { status: res.status, json: await res.json().catch(() => undefined) };
}

/** Registers `count` users (one device each) through the public API; returns their sessions. */
async function registerUsers(baseUrl, capture, count, deadline) {
  const started = performance.now();
  const users = await pool(Array.from({ length: count }, (_, i) => i), 16, async (i) => {
    if (Date.now() > deadline) throw new Error("time budget spent while registering users");
    const phone = `+1415555${String(1000 + i).padStart(4, "0")}`;
    const keys = await newDeviceKeys();
    const requested = await post(`${baseUrl}/v1/registration/code`, { phone });
    if (requested.status !== 202) {
      const err = new Error(`code request for user ${i}: HTTP ${requested.status} ${JSON.stringify(requested.json)}`);
      err.status = requested.status;
      throw err;
    }
    const code = capture.codes.get(phone);
    if (!code) throw new Error(`no SMS captured for ${phone}`);
    const verified = await post(`${baseUrl}/v1/registration/verify`, { phone, code, device: keys });
    if (verified.status !== 201 && verified.status !== 200) {
      throw new Error(`verify for user ${i}: HTTP ${verified.status} ${JSON.stringify(verified.json)}`);
    }
    return { userId: verified.json.userId, token: verified.json.accessToken, registrationId: keys.registrationId };
  });
  return { users, ms: performance.now() - started };
}

async function startServer(persist, capture, pinning) {
  const child = spawnRole("server", ["--persist", persist, "--twilio", capture.url], 0, pinning, { detached: true });
  const log = [];
  const keep = (chunk) => {
    log.push(...chunk.toString("utf8").split("\n").filter(Boolean));
    if (log.length > 300) log.splice(0, log.length - 300);
  };
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  const pgid = child.pid;
  liveServerGroups.add(pgid);
  let exited = false;
  child.once("exit", () => (exited = true));
  const started = performance.now();
  const ready = await withTimeout(
    new Promise((resolve, reject) => {
      child.on("message", (m) => {
        if (m?.type === "ready") resolve(m);
        if (m?.type === "error") reject(new Error(m.error));
      });
      child.once("exit", (code) => reject(new Error(`server exited (${code}) before ready:\n${log.slice(-40).join("\n")}`)));
    }),
    120_000,
    "server start",
  );
  const startMs = performance.now() - started;
  const alive = () => {
    try {
      process.kill(-pgid, 0);
      return true;
    } catch {
      return false;
    }
  };
  const stop = async () => {
    if (!exited) child.send({ cmd: "stop" });
    for (let i = 0; i < 200 && !exited; i++) await sleep(100);
    try {
      process.kill(-pgid, "SIGTERM");
    } catch {
      // the group is gone
    }
    for (let i = 0; i < 100 && alive(); i++) await sleep(100);
    if (alive()) {
      try {
        process.kill(-pgid, "SIGKILL");
      } catch {
        // gone
      }
      for (let i = 0; i < 100 && alive(); i++) await sleep(100);
    }
    if (!alive()) liveServerGroups.delete(pgid);
    return { groupGone: !alive() };
  };
  return { ...ready, pgid, startMs, log, stop };
}

function workerdProcesses(server) {
  const processes = groupProcesses(server.pgid).filter((p) => p.comm === "workerd" && p.state !== "Z");
  const userPort = Number(new URL(server.userWorkerUrl).port);
  const userPid = listenerPid(userPort, processes.map((p) => p.pid));
  return { all: processes.map((p) => p.pid), userPid };
}

function memory(server) {
  const { all, userPid } = workerdProcesses(server);
  return { userWorkerdKb: userPid ? rssKb(userPid) : null, allWorkerdKb: all.reduce((n, pid) => n + rssKb(pid), 0), userPid, pids: all };
}

async function cpuOver(pids, ms) {
  const before = pids.map(cpuTicks);
  const t = performance.now();
  await sleep(ms);
  const elapsed = (performance.now() - t) / 1000;
  const ticks = pids.map(cpuTicks).reduce((n, v, i) => n + v - before[i], 0);
  return Math.round((ticks / 100 / elapsed) * 1000) / 10; // percent of one core (CLK_TCK = 100)
}

async function runStorage(kind, profile, capture, pinning, workers, loadPids, deadline) {
  const base = kind === "tmpfs" ? "/dev/shm" : tmpdir();
  const fsType = (() => {
    try {
      return execFileSync("stat", ["-f", "-c", "%T", base], { encoding: "utf8" }).trim();
    } catch {
      return "unknown";
    }
  })();
  const persist = mkdtempSync(join(base, "relay-bench-"));
  const result = { storage: kind, persistTo: persist, fsType, workloads: {} };
  const server = await startServer(persist, capture, pinning);
  result.serverStartMs = Math.round(server.startMs);
  result.userWorkerUrl = server.userWorkerUrl;
  result.proxyUrl = server.proxyUrl;
  const url = server.userWorkerUrl;
  console.log(`\n[${kind}] state in ${persist} (${fsType}); user worker ${url} (dev proxy ${server.proxyUrl} not used)`);
  try {
    const health = await fetch(`${url}/v1/health`);
    if (!health.ok) throw new Error(`health: HTTP ${health.status}`);

    const needed = Math.max(profile.idleSockets, profile.pairs * 2 + 2);
    const fresh = memory(server);
    const { users, ms } = await registerUsers(url, capture, needed, deadline);
    await sleep(500);
    const registered = memory(server);
    result.registration = {
      users: users.length,
      ms: Math.round(ms),
      perSecond: Math.round((users.length / ms) * 1000 * 10) / 10,
      userWorkerdRssKb: { atStart: fresh.userWorkerdKb, afterRegistration: registered.userWorkerdKb },
    };
    console.log(`[${kind}] registered ${users.length} users in ${(ms / 1000).toFixed(1)} s (${result.registration.perSecond}/s)`);

    // (c) idle connections
    {
      const tokens = users.slice(0, profile.idleSockets).map((u) => u.token);
      const beforeWarm = memory(server);
      // Wake every user's Durable Object first (one RPC each), so the delta below is the sockets' own cost.
      await pool(tokens, 16, async (token) => {
        const res = await fetch(`${url}/v1/keys`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(30_000) });
        await res.arrayBuffer();
        if (!res.ok) throw new Error(`GET /v1/keys: HTTP ${res.status}`);
      });
      await sleep(1_000);
      const before = memory(server);
      const halves = Array.from({ length: LOAD_WORKERS }, (_, w) => tokens.filter((_, i) => i % LOAD_WORKERS === w));
      const opened = await Promise.all(workers.map((call, w) => call("idleConnect", { baseUrl: url, tokens: halves[w] }, 120_000)));
      const connected = opened.reduce((n, o) => n + o.connected, 0);
      await sleep(1_000);
      const settled = memory(server);
      const cpuPct = await cpuOver(settled.pids, profile.idleWindowMs);
      const afterIdle = memory(server);
      await Promise.all(workers.map((call) => call("idleClose", {}, 60_000)));
      await sleep(500);
      const closed = memory(server);
      const perConn = (kb) => (connected ? Math.round(((kb * 1024) / connected) * 10) / 10 : null);
      result.workloads.idle = {
        sockets: tokens.length,
        connected,
        failed: opened.reduce((n, o) => n + o.failed, 0),
        firstFailure: opened.find((o) => o.firstFailure)?.firstFailure,
        connectMs: Math.round(Math.max(...opened.map((o) => o.ms))),
        rssKb: { beforeWarm: beforeWarm.userWorkerdKb, before: before.userWorkerdKb, connected: settled.userWorkerdKb, afterIdle: afterIdle.userWorkerdKb, afterClose: closed.userWorkerdKb },
        allWorkerdRssKb: { before: before.allWorkerdKb, connected: settled.allWorkerdKb, afterIdle: afterIdle.allWorkerdKb, afterClose: closed.allWorkerdKb },
        bytesPerConnection: perConn(settled.userWorkerdKb - before.userWorkerdKb),
        bytesPerConnectionAfterIdle: perConn(afterIdle.userWorkerdKb - before.userWorkerdKb),
        idleWindowMs: profile.idleWindowMs,
        idleCpuPercentOfCore: cpuPct,
        idleCpuOk: cpuPct <= 2,
        workerdProcesses: settled.pids.length,
      };
      const r = result.workloads.idle;
      console.log(
        `[${kind}] (c) idle: ${r.connected}/${r.sockets} sockets; user workerd RSS ${r.rssKb.before} → ${r.rssKb.connected} kB ` +
          `(${r.bytesPerConnection} B/conn), idle CPU ${r.idleCpuPercentOfCore}% of a core over ${profile.idleWindowMs} ms`,
      );
    }

    // (a) durable 1:1, open loop, stepped
    {
      const list = Array.from({ length: profile.pairs }, (_, i) => ({ sender: users[2 * i], recipient: users[2 * i + 1] }));
      await Promise.all(
        workers.map((call, w) => call("pairsConnect", { baseUrl: url, list: list.filter((_, i) => i % LOAD_WORKERS === w) }, 60_000)),
      );
      const steps = [];
      const rates = kind === "disk" ? profile.diskRates : profile.rates;
      for (const [stepIndex, rate] of rates.entries()) {
        const need = profile.stepMs + profile.drainMs + 2_000;
        if (Date.now() + need + profile.reserveMs > deadline) {
          steps.push({ offered: rate, skipped: "time budget" });
          continue;
        }
        const { all: workerdPids, userPid } = workerdProcesses(server);
        const cpuPids = [userPid ?? workerdPids[0], ...loadPids];
        const ticksBefore = cpuPids.map(cpuTicks);
        const stepStarted = performance.now();
        const parts = await Promise.all(
          workers.map((call) =>
            call("step", { stepIndex, rate: rate / LOAD_WORKERS, durationMs: profile.stepMs, drainMs: profile.drainMs }, need + 30_000),
          ),
        );
        const stepSeconds = (performance.now() - stepStarted) / 1000;
        const cpu = cpuPids.map((pid, i) => Math.round(((cpuTicks(pid) - ticksBefore[i]) / 100 / stepSeconds) * 1000) / 10);
        const sum = (key) => parts.reduce((n, p) => n + p[key], 0);
        const errors = {};
        for (const p of parts) for (const [code, n] of Object.entries(p.errors)) errors[code] = (errors[code] ?? 0) + n;
        const spanMs = Math.max(...parts.map((p) => p.spanMs));
        const delivery = summarize(parts.flatMap((p) => p.delivery));
        const s = {
          offered: rate,
          scheduled: sum("total"),
          delivered: sum("delivered"),
          acked: sum("acked"),
          failed: sum("failed"),
          duplicates: sum("duplicates"),
          achievedPerSecond: Math.round((sum("delivered") / spanMs) * 1000),
          deliveryMs: delivery,
          sentAckMs: summarize(parts.flatMap((p) => p.ack)),
          generatorLagMs: summarize(parts.flatMap((p) => p.lag)),
          errors,
          worstDeliveryMsPer500msOfSchedule: Array.from(
            { length: Math.max(...parts.map((p) => p.timeline.length)) },
            (_, i) => Math.round(Math.max(...parts.map((p) => p.timeline[i] ?? 0))),
          ),
          cpuPercentOfCore: { userWorkerd: cpu[0], loadWorkers: cpu.slice(1), overMs: Math.round(stepSeconds * 1000) },
          drained: sum("delivered") + sum("failed") >= sum("total") && sum("acked") + sum("failed") >= sum("total"),
        };
        steps.push(s);
        console.log(
          `[${kind}] (a) ${rate} msg/s offered → ${s.achievedPerSecond}/s delivered ${s.delivered}/${s.scheduled}; ` +
            `delivery p50 ${delivery.p50} p99 ${delivery.p99} p99.9 ${delivery.p999} ms; sent-ack p50 ${s.sentAckMs.p50} p99 ${s.sentAckMs.p99} ms; ` +
            `CPU workerd ${cpu[0]}% load ${cpu.slice(1).join("+")}% (step+drain)` +
            (Object.keys(errors).length ? `; errors ${JSON.stringify(errors)}` : ""),
        );
        if (!s.drained || (delivery.p99 ?? 0) > 2_000) {
          for (const later of rates.slice(stepIndex + 1)) steps.push({ offered: later, skipped: "saturated at the previous step" });
          break;
        }
        await sleep(500);
      }
      await Promise.all(workers.map((call) => call("pairsClose", {}, 30_000)));
      result.workloads.durable1to1 = { pairs: profile.pairs, stepMs: profile.stepMs, bodyBytes: 96, steps };
    }

    // (b) backlog drain
    {
      const remaining = deadline - Date.now();
      if (remaining < 20_000) {
        result.workloads.backlog = { skipped: "time budget" };
      } else {
        const sender = users[profile.pairs * 2];
        const recipient = users[profile.pairs * 2 + 1];
        const timeoutMs = Math.min(120_000, remaining - 10_000);
        const b = await workers[0]("backlog", { baseUrl: url, sender, recipient, count: profile.backlog, window: 256, timeoutMs }, timeoutMs + 15_000);
        b.queuePerSecond = Math.round((b.count / b.queueMs) * 1000);
        b.drainPerSecond = Math.round((b.count / b.drainMs) * 1000);
        b.ok = b.received === b.count && b.duplicates === 0 && b.missing === 0 && b.outOfOrder === 0 && b.pendingAfter === 0;
        result.workloads.backlog = b;
        console.log(
          `[${kind}] (b) backlog ${b.count}: queued in ${(b.queueMs / 1000).toFixed(1)} s (${b.queuePerSecond}/s); ` +
            `drained in ${Math.round(b.drainMs)} ms (${b.drainPerSecond}/s); missing ${b.missing}, duplicated ${b.duplicates}, ` +
            `out of order ${b.outOfOrder}, pending after ${b.pendingAfter} → ${b.ok ? "ok" : "FAILED"}`,
        );
      }
    }
  } catch (error) {
    result.error = String(error?.stack ?? error);
    result.serverLogTail = server.log.slice(-40);
    console.error(`[${kind}] failed: ${error?.message ?? error}\n  server log tail:\n  ${server.log.slice(-15).join("\n  ")}`);
  } finally {
    const stopped = await server.stop();
    result.serverStopped = stopped.groupGone;
    rmSync(persist, { recursive: true, force: true });
  }
  return result;
}

function settingsLine(run, pinning) {
  return {
    observability: "off (X_LOCAL_OBSERVABILITY=false)",
    proxy: "skipped (user worker URL from reloadComplete)",
    pinning: pinning.pin ? "server core 0, load core 1" : `none (${pinning.why})`,
    storage: `${run.storage} (${run.fsType})`,
  };
}

function printTable(runs, pinning) {
  const rows = [];
  const row = (run, workload, figure, value) => {
    const s = settingsLine(run, pinning);
    rows.push([workload, figure, value, s.storage, "off", "skipped", pinning.pin ? "0 | 1" : "none"]);
  };
  for (const run of runs) {
    const w = run.workloads;
    if (run.registration) row(run, "setup", "registrations/s", `${run.registration.perSecond} (${run.registration.users} users)`);
    if (w.idle) {
      row(run, "(c) idle", "connected", `${w.idle.connected}/${w.idle.sockets} in ${w.idle.connectMs} ms`);
      row(run, "(c) idle", "user workerd RSS", `${run.registration.userWorkerdRssKb.atStart} kB at start → ${run.registration.userWorkerdRssKb.afterRegistration} kB after registering`);
      row(run, "(c) idle", "user workerd RSS Δ/conn", `${w.idle.bytesPerConnection} B (${w.idle.rssKb.before}→${w.idle.rssKb.connected} kB, DOs woken first)`);
      row(run, "(c) idle", "RSS Δ/conn after idle", `${w.idle.bytesPerConnectionAfterIdle} B`);
      row(run, "(c) idle", "workerd CPU while idle", `${w.idle.idleCpuPercentOfCore}% of a core`);
    }
    for (const s of w.durable1to1?.steps ?? []) {
      if (s.skipped) {
        row(run, "(a) 1:1", `${s.offered} msg/s`, `skipped: ${s.skipped}`);
        continue;
      }
      row(
        run,
        "(a) 1:1",
        `${s.offered} msg/s`,
        `${s.achievedPerSecond}/s; deliver p50/p99/p99.9 ${s.deliveryMs.p50}/${s.deliveryMs.p99}/${s.deliveryMs.p999} ms; ` +
          `sent ${s.sentAckMs.p50}/${s.sentAckMs.p99}/${s.sentAckMs.p999} ms${s.drained ? "" : " (NOT drained)"}`,
      );
    }
    const b = w.backlog;
    if (b && !b.skipped) {
      row(run, "(b) backlog", `${b.count} queued`, `${b.queuePerSecond}/s to queue`);
      row(run, "(b) backlog", "connect→all acked", `${Math.round(b.drainMs)} ms (${b.drainPerSecond}/s), ${b.ok ? "complete, in order" : "FAILED checks"}`);
    }
    if (run.error) row(run, "error", "", run.error.split("\n")[0]);
  }
  const header = ["workload", "figure", "value", "storage", "observability", "dev proxy", "cores srv|load"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) => cells.map((c, i) => String(c).padEnd(widths[i])).join(" │ ");
  console.log(`\n${line(header)}\n${widths.map((w) => "─".repeat(w)).join("─┼─")}`);
  for (const r of rows) console.log(line(r));
}

async function runOrchestrator() {
  const profileName = flags.quick ? "quick" : "full";
  const profile = { ...PROFILES[profileName] };
  if (flags.rates) profile.rates = profile.diskRates = flags.rates.split(",").map(Number);
  if (flags["step-ms"]) profile.stepMs = Number(flags["step-ms"]);
  if (flags.pairs) profile.pairs = Number(flags.pairs);
  const started = Date.now();
  const deadline = started + profile.budgetMs;
  const storages = flags.storage === "both" ? ["tmpfs", "disk"] : [flags.storage];
  if (!storages.every((s) => s === "tmpfs" || s === "disk")) throw new Error("--storage is tmpfs, disk or both");

  const pinning = canPin();
  if (pinning.pin) execFileSync("taskset", ["-a", "-cp", "1", String(process.pid)], { stdio: "ignore" });
  console.log(
    `spine-load (${profileName}): observability off, dev proxy skipped, ` +
      (pinning.pin ? "server pinned to core 0 (taskset -c 0), load generator + orchestrator to core 1 (taskset -c 1)" : `no pinning (${pinning.why})`) +
      `; storage: ${storages.join(", ")}; budget ${profile.budgetMs / 1000} s`,
  );

  const capture = await startCapture();
  const children = [];
  const workers = await Promise.all(
    Array.from({ length: LOAD_WORKERS }, async (_, w) => {
      const child = spawnRole("load", ["--index", String(w)], 1, pinning);
      children.push(child);
      child.stderr.on("data", (d) => process.stderr.write(`[load ${w}] ${d}`));
      await withTimeout(new Promise((resolve) => child.on("message", (m) => m?.type === "up" && resolve())), 30_000, `load worker ${w}`);
      return rpcChild(child, `load worker ${w}`);
    }),
  );
  const cleanup = () => {
    for (const child of children) if (child.exitCode === null) child.kill("SIGKILL");
    for (const pgid of liveServerGroups) {
      try {
        process.kill(-pgid, "SIGKILL");
      } catch {
        // gone
      }
    }
  };
  process.on("exit", cleanup);
  process.once("SIGINT", () => process.exit(130));
  process.once("SIGTERM", () => process.exit(143));
  // A last resort if anything hangs: the run never outlives its budget by more than a minute.
  setTimeout(() => {
    console.error(`spine-load: over budget by 60 s, stopping`);
    process.exit(2);
  }, profile.budgetMs + 60_000).unref();

  const runs = [];
  try {
    for (const kind of storages) {
      if (Date.now() + 40_000 > deadline) {
        runs.push({ storage: kind, skipped: "time budget", workloads: {} });
        continue;
      }
      // Split the rest of the budget fairly among the storage kinds still to run.
      const left = storages.length - storages.indexOf(kind);
      const share = Math.floor((deadline - Date.now()) / left);
      runs.push(await runStorage(kind, profile, capture, pinning, workers, children.map((c) => c.pid), Date.now() + share));
    }
  } finally {
    await Promise.all(workers.map((call) => call("exit", {}, 5_000).catch(() => undefined)));
    await sleep(200);
    for (const child of children) if (child.exitCode === null) child.kill("SIGKILL");
    await capture.close();
  }

  printTable(runs.filter((r) => !r.skipped), pinning);
  const result = {
    benchmark: "spine-load",
    profile: profileName,
    startedAt: new Date(started).toISOString(),
    totalMs: Date.now() - started,
    machine: { cpus: MACHINE_CPUS, node: process.version, wrangler: JSON.parse(readFileSync(join(ROOT, "node_modules/wrangler/package.json"), "utf8")).version },
    settings: {
      observability: "off (X_LOCAL_OBSERVABILITY=false)",
      devProxy: "skipped: load sent to proxyData.userWorkerUrl",
      pinning: pinning.pin ? "server (wrangler + workerd) taskset -c 0; 2 load workers + orchestrator taskset -c 1" : `none: ${pinning.why}`,
      storage: storages,
      logLevel: "info (wrangler.toml default)",
      rateLimitOverrides: RATE_LIMIT_OVERRIDES,
      latency: "exact sorted arrays, nearest rank; from each message's scheduled send time (open loop)",
    },
    profileSettings: profile,
    runs,
  };
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = join(RESULTS_DIR, `spine-${new Date(started).toISOString().replace(/[:.]/g, "-")}.json`);
  writeFileSync(file, JSON.stringify(result, null, 2) + "\n");
  console.log(`\nresults: ${file} (total ${((Date.now() - started) / 1000).toFixed(0)} s)`);
  const failed = runs.some((r) => r.error || (r.workloads.backlog && r.workloads.backlog.ok === false));
  process.exit(failed ? 1 : 0);
}

const roles = { server: runServer, load: runLoad, orchestrator: runOrchestrator };
if (!roles[flags.role]) throw new Error(`unknown role ${flags.role}`);
roles[flags.role]().catch((error) => {
  console.error(error?.stack ?? error);
  if (process.send) process.send({ type: "error", error: String(error?.stack ?? error) });
  process.exit(1);
});
