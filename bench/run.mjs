#!/usr/bin/env node
/**
 * `npm run bench`: Relay and real peers, measured in one run, with the same workloads and load generators.
 *
 *   npm run bench                  full run (≤ 15 min)
 *   npm run bench -- --quick       every target, smaller workloads (< 2 min)
 *   npm run bench -- --smoke       Relay direct + the two ws peers, a few hundred messages (< 60 s; the test uses it)
 *   options: --targets relay-workerd,ws-sqlite,…  --workloads 1,2,3,4,5,6  --storage tmpfs|disk  --no-pin
 *            --no-install (never apt-get ejabberd)  --out DIR (results; charts go to DIR/charts unless full)
 *            --gc-trace (V8's collections of the workerd targets, counted per row: bench/lib/gc-trace.mjs)
 *
 * Targets: relay-workerd (Relay on workerd, load sent to the user worker's own URL: no dev proxy),
 * relay-wrangler-dev (the real `npm start`, through wrangler dev's proxy), ws-memory, ws-sqlite (Node `ws`
 * relays, bench/peers/ws-relay.mjs), room-do (one room Durable Object, bench/peers/room-do/), ejabberd (XMPP);
 * inbox-do (Relay's shape, per-user objects, with only the store-then-ack path: bench/peers/inbox-do/) only when named.
 *
 * Workloads: (1) 1:1 durable throughput, open loop, rate stepped up until p99 ≥ 100 ms; (2) delivery latency
 * at 25/50/75 % of Relay's highest sustained rate; (3) offline backlog drain; (4) group fan-out; (5) idle
 * authenticated heartbeating sockets; (6) reconnect storm. See bench/README.md.
 *
 * Every server runs in its own process group (stopped as a group), pinned to core 0 with taskset; the load
 * generators (separate Node processes, each from its own 127.0.0.x source addresses) and this orchestrator
 * run on the other core(s). Writes bench/results/<timestamp>.json and .md, and SVG charts.
 */
/* global AbortSignal, Buffer, fetch, performance */
import { execFileSync } from "node:child_process";
import { generateKeyPairSync, sign } from "node:crypto";
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { availableParallelism, cpus, release, tmpdir, totalmem } from "node:os";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { MUC_HOST, ensureEjabberd, startEjabberd } from "./lib/ejabberd.mjs";
import { describeGc, gcTraceEnv, readGcLog, summarizeGc } from "./lib/gc-trace.mjs";
import {
  Monitor,
  cpuPercent,
  cpuTicks,
  killAllGroups,
  machineTicks,
  pinned,
  pinningPlan,
  rpcChild,
  sleep,
  spawnGroup,
  withTimeout,
} from "./lib/proc.mjs";
import { freePort, registerUsers, startRelayDev, startRelayDirect, startSmsCapture, startWorkerd } from "./lib/relay.mjs";
import { writeReports } from "./lib/report.mjs";
import { curve, merge, newHistogram, recordMs, summary } from "./lib/stats.mjs";
import { dirBytes, durableObjectFiles, fileSizes, grownFiles, queryFiles } from "./lib/storage.mjs";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** The environment of every wrangler invocation (RUNTIME-NOTES.md: local observability off, offline). */
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
    quick: { type: "boolean", default: false },
    smoke: { type: "boolean", default: false },
    targets: { type: "string" },
    workloads: { type: "string" },
    storage: { type: "string", default: "tmpfs" },
    "no-pin": { type: "boolean", default: false },
    "no-install": { type: "boolean", default: false },
    out: { type: "string" },
    redraw: { type: "string" },
    "group-sizes": { type: "string" },
    "gc-trace": { type: "boolean", default: false },
  },
  strict: true,
});

/** The targets of a full or quick run. */
const DEFAULT_TARGETS = ["relay-workerd", "relay-wrangler-dev", "ws-memory", "ws-sqlite", "room-do", "ejabberd"];
/** inbox-do (Relay's shape with only the store-then-ack path) runs only when named in --targets. */
const ALL_TARGETS = [...DEFAULT_TARGETS, "inbox-do"];

const PROFILES = {
  full: {
    budgetMs: 880_000,
    targets: DEFAULT_TARGETS,
    // Each target's share of the time left when it starts, from the steps' times in the runs of 2026-11-29
    // 03:17–03:40 UTC (with the steps then, ~820 s in all): Relay (workerd) ~240 s, a third of it registering its
    // 4,000 users through the API (~50/s; with the channel, workload 8, its 10,001 users: registrationShare);
    // wrangler dev ~125 s; ws ~90 s; room DO ~150 s; ejabberd 125–160 s. What a target leaves unused goes to the
    // ones after it, so the first targets get more than they need rather than less.
    weights: { "relay-workerd": 11, "relay-wrangler-dev": 5.5, "ws-memory": 3.5, "ws-sqlite": 3.5, "room-do": 5, ejabberd: 5 },
    registrationShare: 0.6,
    /**
     * Time kept back from workloads 1–6 for workloads 4 and 8 (they run last), per kind of target: workload 4 took
     * 24 s (Relay (workerd)), 29–38 s (wrangler dev) and 13–18 s (ws peers, room DO) at 03:40 UTC.
     */
    groupReserveMs: { relay: 40_000, other: 22_000 },
    loadWorkers: 4,
    pairs: 50,
    // ×4 steps, then two geometric steps between the last good and the first bad rate: the precision of ×2 steps
    // and one refinement (a factor of √2), in 6–7 steps instead of 10–11 for a peer that reaches 45,000 msg/s.
    // The peers start at 1,000 msg/s: every one of them sustained 1,000 msg/s in every full run so far.
    ladder: { start: 250, peerStart: 1_000, factor: 4, max: 64_000, stepMs: 3_000, drainMs: 4_000, refine: 2 },
    latency: { fractions: [0.25, 0.5, 0.75], stepMs: 4_000, drainMs: 3_000 },
    backlog: [1_000, 10_000, 100_000],
    // Through wrangler dev's proxy, 100,000 take ~40 s to queue; what the proxy adds shows at 10,000 already.
    backlogProxied: [1_000, 10_000],
    // Per group size: messages and their rate (msg/s), spaced so that each fan-out is measured, not a queue of them.
    // The slowest 1,000-member fan-out seen took 0.95 s at p99 (Relay behind wrangler dev's proxy): 1 s apart.
    fanout: { sizes: [10, 100, 1_000], messages: [20, 20, 8], rates: [10, 5, 1], drainMs: 20_000 },
    // 4,000 online: what one local workerd holds within 20,000 open files (~4.3 fds a socket); the rest offline.
    channel: { subscribers: 10_000, online: 4_000, posts: 6, rate: 0.5, drainMs: 15_000 },
    // Relay (wrangler dev): 2,000 sockets, opened at ~80/s through its proxy (~8 fds each); the per-socket
    // figures are the point, and they are flat from the first stage on.
    idle: { peers: 20_000, relay: 4_000, relayProxied: 2_000, heartbeatMs: 30_000, holdMs: 5_000 },
    // Relay's storm reconnects 3,000 of the 4,000 users that just held idle sockets: their objects' SQLite files may
    // still be open, and 4,000 more sockets (~4.3 fds each) would pass the 20,000 open files of one local workerd.
    // Through wrangler dev's proxy the storm runs at ~100 connects/s: 1,000 of them take 10 s.
    storm: { peers: 5_000, relay: 3_000, relayProxied: 1_000, concurrency: 256 },
    /** Kept back from the idle workload's stages for the storm after it: 3–10 s of connects, besides the margin. */
    stormNeedsMs: 12_000,
    installEjabberd: true,
    marginMs: 12_000,
  },
  quick: {
    budgetMs: 104_000,
    groupReserveMs: { relay: 10_000, other: 8_000 },
    targets: DEFAULT_TARGETS,
    weights: { "relay-workerd": 2, "relay-wrangler-dev": 1.3, "ws-memory": 1.1, "ws-sqlite": 1.1, "room-do": 1.3, ejabberd: 1 },
    loadWorkers: 4,
    pairs: 20,
    ladder: { start: 500, factor: 4, max: 32_000, stepMs: 800, drainMs: 1_500, refine: 0 },
    latency: { fractions: [0.25, 0.5, 0.75], stepMs: 600, drainMs: 1_500 },
    backlog: [1_000, 5_000],
    fanout: { sizes: [10, 100], messages: [10, 10], rates: [20, 5], drainMs: 8_000 },
    channel: { subscribers: 200, online: 100, posts: 5, rate: 5, drainMs: 8_000 },
    idle: { peers: 300, relay: 200, heartbeatMs: 1_000, holdMs: 1_500 },
    storm: { peers: 300, relay: 200, concurrency: 128 },
    installEjabberd: false,
    marginMs: 1_500,
  },
  smoke: {
    budgetMs: 120_000,
    groupReserveMs: { relay: 8_000, other: 6_000 },
    targets: ["relay-workerd", "ws-memory", "ws-sqlite"],
    weights: { "relay-workerd": 2.5, "ws-memory": 1, "ws-sqlite": 1 },
    loadWorkers: 2,
    pairs: 10,
    ladder: { start: 100, factor: 2, max: 200, stepMs: 1_000, drainMs: 2_000, refine: 0 },
    latency: { fractions: [0.5], stepMs: 500, drainMs: 2_000 },
    backlog: [200],
    fanout: { sizes: [10], messages: [5], rates: [20], drainMs: 5_000 },
    channel: { subscribers: 29, online: 20, posts: 3, rate: 5, drainMs: 5_000 },
    idle: { peers: 50, relay: 30, heartbeatMs: 500, holdMs: 1_000 },
    storm: { peers: 50, relay: 30, concurrency: 16 },
    installEjabberd: false,
    marginMs: 1_500,
  },
};

const mode = flags.smoke ? "smoke" : flags.quick ? "quick" : "full";
const profile = PROFILES[mode];
if (flags["group-sizes"]) {
  // Workload 4 for some of its group sizes only (each keeps its messages and rate).
  const only = flags["group-sizes"].split(",").map(Number);
  const keep = profile.fanout.sizes.map((size, i) => (only.includes(size) ? i : -1)).filter((i) => i >= 0);
  if (keep.length !== only.length) throw new Error(`--group-sizes: this profile's sizes are ${profile.fanout.sizes.join(", ")}`);
  for (const key of ["sizes", "messages", "rates"]) profile.fanout[key] = keep.map((i) => profile.fanout[key][i]);
}
const targetIds = flags.targets ? flags.targets.split(",").map((s) => s.trim()) : profile.targets;
for (const id of targetIds) if (!ALL_TARGETS.includes(id)) throw new Error(`unknown target ${id} (one of ${ALL_TARGETS.join(", ")})`);
// The full run's channel (workload 8) registers 10,001 users through the API (~3 min at ~55/s): with it, workloads
// 1–6 no longer fit in 15 minutes, so a full run takes it only when asked (`--workloads 8`, or a list with 8).
const defaultWorkloads = mode === "full" ? "1,2,3,4,5,6" : "1,2,3,4,5,6,8";
const workloads = new Set((flags.workloads ?? defaultWorkloads).split(",").map(Number));
if (!["tmpfs", "disk"].includes(flags.storage)) throw new Error("--storage is tmpfs or disk");

const LABELS = {
  "relay-workerd": "Relay (workerd, direct)",
  "relay-wrangler-dev": "Relay (wrangler dev)",
  "ws-memory": "Node ws, in memory",
  "ws-sqlite": "Node ws + SQLite",
  "room-do": "room Durable Object",
  "inbox-do": "per-user inbox Durable Objects, bare",
  ejabberd: "ejabberd (XMPP)",
};
const KIND = { "relay-workerd": "relay", "relay-wrangler-dev": "relay", "ws-memory": "ws", "ws-sqlite": "ws", "room-do": "room", ejabberd: "xmpp", "inbox-do": "ws" };
const WORKLOAD_NAMES = {
  1: "1:1 throughput",
  "1max": "1:1 max sustained",
  2: "delivery latency",
  3: "backlog drain",
  4: "group fan-out",
  5: "idle connections",
  6: "reconnect storm",
  8: "channel post",
};

const benchStarted = performance.now();
/** Progress lines carry the seconds since the run started: the time each step takes is what the budget plans with. */
const log = (first = "", ...rest) => {
  const at = `[${String(Math.round((performance.now() - benchStarted) / 1000)).padStart(3)} s]`;
  const text = String(first);
  const lead = text.match(/^\n*/)[0];
  console.log(`${lead}${at} ${text.slice(lead.length)}`, ...rest);
};
const MACHINE_CPUS = availableParallelism();

// ───────────────────────────── identities ─────────────────────────────

/** Tokens for the peers: base64url(JSON {sub, exp}) "." base64url(Ed25519 signature) (see bench/peers/ws-relay.mjs). */
const peerKey = generateKeyPairSync("ed25519");
const PEER_PUBLIC_KEY = Buffer.from(peerKey.publicKey.export({ format: "jwk" }).x, "base64url").toString("base64");
function peerToken(sub) {
  const payload = Buffer.from(JSON.stringify({ sub, exp: Math.floor(Date.now() / 1000) + 3600 })).toString("base64url");
  return `${payload}.${sign(null, Buffer.from(payload), peerKey.privateKey).toString("base64url")}`;
}
const minted = (userId, room) => ({ userId, token: peerToken(userId), ...(room ? { room } : {}) });

/** Who connects for each workload, per kind of target (Relay: registered users; peers: minted tokens). */
function identitiesFor(kind, pool = []) {
  const run = Date.now().toString(36);
  if (kind === "relay") {
    const pairsN = profile.pairs;
    return {
      pairs: (n) => Array.from({ length: n }, (_, i) => ({ sender: pool[2 * i], recipient: pool[2 * i + 1] })),
      backlog: (k) => ({ sender: pool[2 * pairsN + 2 * k], recipient: pool[2 * pairsN + 2 * k + 1] }),
      idle: (n) => pool.slice(0, n),
      storm: (n) => pool.slice(0, n),
      /** Workloads 4 and 8: the sender (a channel's admin) is user 0, members and subscribers follow. */
      members: (size) => ({ sender: pool[0], members: pool.slice(1, size + 1) }),
      channel: (n) => ({ sender: pool[0], subscribers: pool.slice(1, n + 1) }),
    };
  }
  if (kind === "xmpp") {
    const xu = (user) => ({ user, password: "bench" });
    return {
      pairs: (n) => Array.from({ length: n }, (_, i) => ({ sender: xu(`p${i}s`), recipient: xu(`p${i}r`) })),
      backlog: (k) => ({ sender: xu(`b${k}s`), recipient: xu(`b${k}r`) }),
      /** Workload 4: a MUC room per group size; the sender joins it too (only occupants may post). */
      members: (size) => ({ sender: xu(`g${size}s`), members: Array.from({ length: size }, (_, i) => xu(`g${size}m${i}`)), room: `group-${size}` }),
    };
  }
  const room = kind === "room";
  return {
    pairs: (n) =>
      Array.from({ length: n }, (_, i) => ({
        sender: minted(`p${i}s`),
        recipient: minted(`p${i}r`),
        ...(room ? { room: `pair-${run}-${i}` } : {}),
      })),
    backlog: (k) => ({ sender: minted(`b${k}s`), recipient: minted(`b${k}r`), ...(room ? { room: `backlog-${run}-${k}` } : {}) }),
    members: (size) => ({
      sender: minted(`g${size}s`),
      members: Array.from({ length: size }, (_, i) => minted(`g${size}m${i}`)),
      room: `group-${run}-${size}`,
    }),
    channel: (n) => ({ sender: minted("cs"), subscribers: Array.from({ length: n }, (_, i) => minted(`c${i}`)), room: `channel-${run}` }),
    idle: (n) => Array.from({ length: n }, (_, i) => minted(`i${i}`, room ? `idle-${run}-${Math.floor(i / 100)}` : undefined)),
    storm: (n) => Array.from({ length: n }, (_, i) => minted(`s${i}`, room ? `storm-${run}-${Math.floor(i / 100)}` : undefined)),
  };
}

// ───────────────────────────── machine ─────────────────────────────

function versionOf(pkgPath) {
  try {
    return JSON.parse(readFileSync(pkgPath, "utf8")).version;
  } catch {
    return "unknown";
  }
}

function workerdVersion() {
  // The workerd that wrangler's miniflare runs (there may be another copy for the test pool).
  for (const p of ["node_modules/miniflare/node_modules/workerd/package.json", "node_modules/wrangler/node_modules/workerd/package.json"]) {
    const v = versionOf(join(ROOT, p));
    if (v !== "unknown") return v;
  }
  const miniflareDeps = JSON.parse(readFileSync(join(ROOT, "node_modules/miniflare/package.json"), "utf8")).dependencies ?? {};
  const top = versionOf(join(ROOT, "node_modules/workerd/package.json"));
  return miniflareDeps.workerd && miniflareDeps.workerd !== top ? `${miniflareDeps.workerd} (declared by miniflare)` : top;
}

function openFilesLimit() {
  const line = readFileSync("/proc/self/limits", "utf8").split("\n").find((l) => l.startsWith("Max open files"));
  return line ? Number(line.split(/\s+/)[3]) : null;
}

function fsType(path) {
  try {
    return execFileSync("stat", ["-f", "-c", "%T", path], { encoding: "utf8" }).trim();
  } catch {
    return "unknown";
  }
}

// ───────────────────────────── measurement helpers ─────────────────────────────

let workers = [];
let loadPids = [];

function row(target, workload, params, fields) {
  return {
    workload: WORKLOAD_NAMES[workload] ?? String(workload),
    workload_id: String(workload),
    peer: target.id,
    label: LABELS[target.id],
    server: target.server,
    params,
    status: "ok",
    throughput: null,
    throughput_unit: null,
    latency_ms: { p50: null, p99: null, p999: null },
    cpu: null,
    rss_mb: null,
    fds: null,
    ...fields,
  };
}

const latencyOf = (s) => ({ p50: s.p50, p99: s.p99, p999: s.p999 });
const resources = (m) => ({ cpu: m.cpu, rss_mb: m.rss_mb, fds: m.fds, other_cpu: m.other_cpu, steal_cpu: m.steal_cpu, ...(m.gc && { gc: m.gc }) });

/** Outside load (other processes' CPU + hypervisor steal, % of a core) above which a step is measured again. */
const DISTURBED = 30;

/**
 * One open-loop step (see measureStep); a step disturbed from outside the bench (other processes or the
 * hypervisor taking more than DISTURBED % of a core) is measured again, at most twice, and says so. A ladder
 * step that was sustained in spite of it stands (`keepSustained`): measuring it again could only confirm it.
 */
async function runStep(ctx, stepIndex, rate, stepMs, drainMs, { keepSustained = false } = {}) {
  let r;
  const disturbed = [];
  for (let attempt = 0; attempt < 3; attempt++) {
    r = await measureStep(ctx, stepIndex * 3 + attempt, rate, stepMs, drainMs);
    const outside = r.m.other_cpu + r.m.steal_cpu;
    if (outside <= DISTURBED || (keepSustained && r.sustained) || attempt === 2 || timeLeft(ctx) < stepMs + drainMs + profile.marginMs) break;
    disturbed.push({ outside, p99: r.delivery.p99, sustained: r.sustained });
    log(`  … ${rate} msg/s step disturbed (other ${r.m.other_cpu}% steal ${r.m.steal_cpu}% of a core): measuring again`);
    await sleep(2_000);
  }
  r.disturbedAttempts = disturbed;
  return r;
}

/** One open-loop step across all load workers: `rate` msg/s in total. */
async function measureStep(ctx, stepIndex, rate, stepMs, drainMs) {
  const window = ctx.monitor.begin();
  const loadBefore = loadPids.map(cpuTicks);
  const t = performance.now();
  const parts = await Promise.all(
    workers.map((call) => call("step", { stepIndex, rate: rate / workers.length, durationMs: stepMs, drainMs }, stepMs + drainMs + 30_000)),
  );
  const m = window.end();
  const loadCpu = cpuPercent(loadPids, loadBefore, (performance.now() - t) / 1000);
  const sum = (key) => parts.reduce((n, p) => n + p[key], 0);
  const errors = {};
  for (const p of parts) for (const [code, n] of Object.entries(p.errors)) errors[code] = (errors[code] ?? 0) + n;
  const deliveryH = merge(parts.map((p) => p.delivery));
  const delivery = summary(deliveryH);
  const ack = summary(merge(parts.map((p) => p.ack)));
  const lag = summary(merge(parts.map((p) => p.lag)));
  const total = sum("total");
  const delivered = sum("delivered");
  const spanMs = Math.max(...parts.map((p) => p.spanMs));
  const achieved = Math.round((delivered / spanMs) * 1000);
  const drained = delivered + sum("failed") >= total && (!ctx.sentAcks || sum("acked") + sum("failed") >= total);
  const sustained = drained && sum("failed") === 0 && delivery.p99 !== null && delivery.p99 < 100 && achieved >= 0.95 * rate;
  return {
    rate,
    achieved,
    total,
    delivered,
    acked: ctx.sentAcks ? sum("acked") : null,
    failed: sum("failed"),
    duplicates: sum("duplicates"),
    errors,
    drained,
    sustained,
    delivery,
    deliveryCurve: curve(deliveryH),
    sentAck: ctx.sentAcks ? ack : null,
    generatorLag: lag,
    loadCpu,
    m,
  };
}

function stepRow(ctx, workload, params, r) {
  return row(ctx.target, workload, params, {
    throughput: r.achieved,
    throughput_unit: "msg/s delivered",
    latency_ms: latencyOf(r.delivery),
    ...resources(r.m),
    sustained: r.sustained,
    details: {
      scheduled: r.total,
      delivered: r.delivered,
      acked: r.acked,
      failed: r.failed,
      duplicates: r.duplicates,
      errors: r.errors,
      drained: r.drained,
      delivery_max_ms: r.delivery.max,
      sent_ack_ms: r.sentAck,
      generator_lag_ms: r.generatorLag,
      load_cpu: r.loadCpu,
      latency_curve: r.deliveryCurve,
      window_s: r.m.seconds,
      disturbed_attempts: r.disturbedAttempts,
    },
  });
}

function describeStep(r) {
  return (
    `${r.rate} msg/s offered → ${r.achieved}/s delivered ${r.delivered}/${r.total}; p50 ${r.delivery.p50} p99 ${r.delivery.p99} p99.9 ${r.delivery.p999} ms; ` +
    `server CPU ${r.m.cpu}% load ${r.loadCpu}%${r.m.other_cpu + r.m.steal_cpu > 10 ? ` other ${r.m.other_cpu}% steal ${r.m.steal_cpu}%` : ""}${r.generatorLag.p99 > 10 ? ` (generator lag p99 ${r.generatorLag.p99} ms)` : ""}${r.m.gc ? `; ${describeGc(r.m.gc)}` : ""}` +
    (Object.keys(r.errors).length ? ` errors ${JSON.stringify(r.errors)}` : "") +
    (r.sustained ? "" : "  ✗")
  );
}

/** The profile's setting for this target: `proxied` for Relay behind wrangler dev's proxy when the profile has one. */
const forTarget = (ctx, usual, proxied) => (ctx.target.id === "relay-wrangler-dev" ? (proxied ?? usual) : usual);

/** How many Relay users a workload takes: fewer through wrangler dev's proxy when the profile says so. */
const relayCount = (ctx, spec) => forTarget(ctx, spec.relay, spec.relayProxied);
/**
 * Sockets for workloads 5 and 6: a peer process holds every socket itself, while each of Relay's and the inbox
 * peer's sockets wakes a Durable Object with its own SQLite files (about 4,000 fit in one workerd's open files).
 */
const socketCount = (ctx, spec) =>
  ctx.kind === "relay" ? Math.min(relayCount(ctx, spec), ctx.poolSize ?? 0) : ctx.objectPerUser ? relayCount(ctx, spec) : spec.peers;

/** Time left for the current workload (workloads 1–6 leave `ctx.reserveMs` for the group workloads). */
const timeLeft = (ctx) => ctx.deadline - Date.now() - (ctx.reserveMs ?? 0);

// ───────────────────────────── workloads ─────────────────────────────

/** Runs one workload; its failure becomes an error row, and the target goes on with its next workload. */
async function runWorkload(ctx, workload, run) {
  try {
    await run();
  } catch (error) {
    const message = String(error?.message ?? error);
    ctx.rows.push(row(ctx.target, workload, {}, { status: "error", error: message.split("\n").slice(0, 8).join("\n") }));
    log(`  (${workload}) failed: ${message.split("\n")[0]}`);
  }
}

/** Workloads 1 and 2 (they share the connected pairs). */
async function throughputAndLatency(ctx, reference) {
  const split = (list) => workers.map((_, w) => list.filter((_, i) => i % workers.length === w));
  const list = ctx.ids.pairs(profile.pairs);
  await Promise.all(workers.map((call, w) => call("pairsConnect", { list: split(list)[w] }, 120_000)));
  let stepIndex = 0;
  let best = null;
  const L = profile.ladder;
  try {
    if (workloads.has(1)) {
      let failedAt = null;
      const ladder = [];
      const start = ctx.kind === "relay" ? L.start : (L.peerStart ?? L.start);
      for (let r = start; r <= L.max; r *= L.factor) ladder.push(r);
      for (const rate of ladder) {
        if (timeLeft(ctx) < L.stepMs + L.drainMs + profile.marginMs) {
          ctx.notes.push(`workload 1: ladder stopped at ${rate} msg/s offered (time budget)`);
          break;
        }
        const r = await runStep(ctx, stepIndex++, rate, L.stepMs, L.drainMs, { keepSustained: true });
        log(`  (1) ${describeStep(r)}`);
        ctx.rows.push(stepRow(ctx, 1, { offered_per_s: rate, pairs: profile.pairs, step_s: L.stepMs / 1000 }, r));
        if (r.sustained) best = r;
        else {
          failedAt = r;
          break;
        }
        await sleep(500);
      }
      // Geometric steps between the last good and the first bad rate, rounded to 50 msg/s.
      let low = best?.rate;
      let high = failedAt?.rate;
      for (let k = 0; k < L.refine && low && high; k++) {
        const rate = Math.round(Math.sqrt(low * high) / 50) * 50;
        if (rate <= low || rate >= high || timeLeft(ctx) < L.stepMs + L.drainMs + profile.marginMs) break;
        await sleep(1_500);
        const r = await runStep(ctx, stepIndex++, rate, L.stepMs, L.drainMs, { keepSustained: true });
        log(`  (1) ${describeStep(r)} (refinement)`);
        ctx.rows.push(stepRow(ctx, 1, { offered_per_s: rate, pairs: profile.pairs, step_s: L.stepMs / 1000 }, r));
        if (r.sustained) {
          best = r;
          low = rate;
        } else high = rate;
      }
      const ran = stepIndex > 0;
      const maxRow = best
        ? stepRow(ctx, "1max", { criterion: "p99 < 100 ms, ≥ 95 % of offered delivered, none failed", pairs: profile.pairs }, best)
        : ran
          ? row(ctx.target, "1max", { criterion: "p99 < 100 ms", pairs: profile.pairs }, { throughput: 0, throughput_unit: "msg/s", note: `no step met the criterion (lowest offered ${start} msg/s)` })
          : row(ctx.target, "1max", { criterion: "p99 < 100 ms", pairs: profile.pairs }, { status: "skipped", note: "time budget" });
      if (best) maxRow.params.offered_per_s = best.rate;
      ctx.rows.push(maxRow);
      ctx.maxSustained = best?.rate ?? 0;
      log(`  (1) highest sustained: ${best ? `${best.rate} msg/s offered (${best.achieved}/s)` : "none"}`);
      await sleep(mode === "full" ? 3_000 : 1_000); // let a saturated server finish its queues before workload 2
    }
    if (workloads.has(2)) {
      const ref = reference?.rate ? reference : { rate: ctx.maxSustained || L.start, from: reference ? `${ctx.target.id} (Relay reference missing)` : ctx.target.id };
      for (const fraction of profile.latency.fractions) {
        const rate = Math.max(1, Math.round(ref.rate * fraction));
        if (timeLeft(ctx) < profile.latency.stepMs + profile.latency.drainMs + profile.marginMs) {
          ctx.notes.push(`workload 2: ${fraction * 100} % step skipped (time budget)`);
          continue;
        }
        const r = await runStep(ctx, stepIndex++, rate, profile.latency.stepMs, profile.latency.drainMs);
        log(`  (2) ${fraction * 100}% of ${ref.rate}: ${describeStep(r)}`);
        ctx.rows.push(stepRow(ctx, 2, { fraction, offered_per_s: rate, reference_rate: ref.rate, reference: ref.from, pairs: profile.pairs }, r));
        await sleep(300);
      }
    }
  } finally {
    await Promise.all(workers.map((call) => call("pairsClose", {}, 60_000).catch(() => undefined)));
  }
}

async function backlogDrain(ctx) {
  let queueRate = null;
  const counts = forTarget(ctx, profile.backlog, profile.backlogProxied);
  for (const [k, count] of counts.entries()) {
    // Queueing is most of it: 100,000 queued in 29–34 s and drained in 1.5–1.9 s (Relay (workerd), 10,000 queued at ~3,400/s).
    const estimate = (count / (queueRate ?? 2_000)) * 1000 * 1.25 + profile.marginMs;
    if (timeLeft(ctx) < estimate) {
      ctx.notes.push(`workload 3: backlog of ${count} skipped (time budget; ~${Math.round(estimate / 1000)} s needed)`);
      ctx.rows.push(row(ctx.target, 3, { messages: count }, { status: "skipped", note: "time budget" }));
      continue;
    }
    const timeoutMs = Math.max(20_000, timeLeft(ctx) - 10_000);
    const { sender, recipient, room } = ctx.ids.backlog(k);
    const window = ctx.monitor.begin();
    const b = await workers[0](
      "backlog",
      { sender, recipient, room, count, window: ctx.kind === "xmpp" ? 500 : 256, timeoutMs, spoolDb: ctx.spoolDb },
      timeoutMs + 30_000,
    );
    const m = window.end();
    queueRate = count / (b.queueMs / 1000);
    const ok = b.received === count && b.duplicates === 0 && b.missing === 0 && b.outOfOrder === 0 && (b.pendingAfter === null || b.pendingAfter === 0);
    const lat = summary(merge([b.sinceConnect]));
    ctx.rows.push(
      row(ctx.target, 3, { messages: count }, {
        throughput: Math.round(count / (b.drainMs / 1000)),
        throughput_unit: "msg/s drained",
        latency_ms: latencyOf(lat),
        ...resources(m),
        drain_ms: Math.round(b.drainMs),
        complete_in_order: ok,
        status: ok ? "ok" : "error",
        ...(ok ? {} : { error: `backlog checks failed: received ${b.received}/${count}, missing ${b.missing}, duplicated ${b.duplicates}, out of order ${b.outOfOrder}, pending after ${b.pendingAfter}` }),
        details: {
          queue_ms: Math.round(b.queueMs),
          queue_per_s: Math.round(queueRate),
          ready_ms: Math.round(b.readyMs),
          first_page_ms: Math.round(b.firstPageMs),
          received: b.received,
          missing: b.missing,
          duplicates: b.duplicates,
          out_of_order: b.outOfOrder,
          pending_at_connect: b.pendingAtConnect,
          pending_after: b.pendingAfter,
          send_errors: b.errors,
          latency_note: "latency = time from connect until each message arrived",
        },
      }),
    );
    log(
      `  (3) backlog ${count}: queued at ${Math.round(queueRate)}/s; drained in ${Math.round(b.drainMs)} ms ` +
        `(${Math.round(count / (b.drainMs / 1000))}/s); missing ${b.missing}, duplicated ${b.duplicates}, out of order ${b.outOfOrder} → ${ok ? "ok" : "FAILED"}`,
    );
  }
}

// ───────────────────────────── groups (workloads 4 and 8) ─────────────────────────────

/** A call to Relay's HTTP API as `who` (a registered user); throws on an unexpected status. */
async function relayApi(ctx, who, method, path, body, expect = [200, 201]) {
  const res = await fetch(`${ctx.baseUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${who.token}`, ...(body ? { "content-type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(60_000),
  });
  const json = await res.json().catch(() => null);
  if (!expect.includes(res.status)) throw new Error(`${method} ${path}: HTTP ${res.status} ${JSON.stringify(json)?.slice(0, 300)}`);
  return json;
}

/** Members joined on every load worker (split evenly); waits until each is ready (see load-worker groupJoin). */
async function joinGroup(ctx, members, room, spec, timeoutMs) {
  const split = workers.map((_, w) => members.filter((_, i) => i % workers.length === w));
  const t = performance.now();
  await Promise.all(workers.map((call, w) => call("groupJoin", { identities: split[w], room, group: spec }, Math.max(120_000, timeoutMs))));
  const connectMs = performance.now() - t;
  let status;
  for (;;) {
    const parts = await Promise.all(workers.map((call) => call("groupStatus", {}, 30_000)));
    status = { members: parts.reduce((n, p) => n + p.members, 0), ready: parts.reduce((n, p) => n + p.ready, 0), fetchErrors: parts.flatMap((p) => p.fetchErrors) };
    if (status.ready >= status.members || performance.now() - t > timeoutMs) break;
    await sleep(200);
  }
  return { ...status, connectMs: Math.round(connectMs), readyMs: Math.round(performance.now() - t) };
}

/** Waits (up to `maxMs`) until the serving processes use less than `below` % of a core over half a second. */
async function waitServerQuiet(ctx, maxMs, below = 15) {
  const t = performance.now();
  let cpu = null;
  while (performance.now() - t < maxMs) {
    const w = ctx.monitor.begin();
    await sleep(500);
    cpu = w.end().cpu;
    if (cpu < below) break;
  }
  return { waitedMs: Math.round(performance.now() - t), cpu };
}

/**
 * Waits until every sent message reached `expected` members for each of `measures` ("message", "notice"),
 * at least `minMs` and at most `maxMs` after the last send. Resolves with the time waited.
 */
async function awaitGroupDrain(sent, expected, measures, minMs, maxMs) {
  const t = performance.now();
  const ids = Object.keys(sent.seqs);
  for (;;) {
    const parts = await Promise.all(workers.map((call) => call("groupProgress", { seqs: sent.seqs }, 30_000)));
    const complete = ids.every((id) => measures.every((k) => parts.reduce((n, p) => n + (p[id]?.[k] ?? 0), 0) >= expected));
    const waited = performance.now() - t;
    if ((complete && waited >= minMs) || waited >= maxMs) return { waitedMs: Math.round(waited), complete };
    await sleep(complete ? minMs - waited : 250);
  }
}

/**
 * Per message: how many members got it (and, with notices, were told of it) and when the last of them did;
 * latencies from the message's scheduled send time (in its id) to the last member.
 */
function lastMemberLatencies(parts, sent, expected, idPrefix) {
  const h = { message: newHistogram(), notice: newHistogram() };
  /** Scheduled send → the last member that got it at all (when some never did, this still says how long the rest took). */
  const received = { message: newHistogram(), notice: newHistogram() };
  const n = { message: { complete: 0, deliveries: 0 }, notice: { complete: 0, deliveries: 0 } };
  /** [scheduled, ms to the last member] of each message every member got, in send order: is the first the slowest? */
  const byMessage = { message: [], notice: [] };
  let firstScheduled = Infinity;
  const lastArrival = { message: 0, notice: 0 };
  const ids = Object.keys(sent.seqs);
  for (const p of parts) for (const id of Object.keys(p.messages)) if (id.startsWith(`${idPrefix}`) && !ids.includes(id)) ids.push(id);
  for (const id of ids) {
    const scheduled = Number(id.slice(id.lastIndexOf("t") + 1)) / 1000;
    firstScheduled = Math.min(firstScheduled, scheduled);
    for (const kind of ["message", "notice"]) {
      let count = 0;
      let last = 0;
      for (const p of parts) {
        const got = (kind === "message" ? p.messages : p.notices)[id];
        if (!got) continue;
        count += got.count;
        last = Math.max(last, got.last);
      }
      n[kind].deliveries += count;
      lastArrival[kind] = Math.max(lastArrival[kind], last);
      if (count > 0) recordMs(received[kind], last - scheduled);
      if (count >= expected && expected > 0) {
        n[kind].complete++;
        recordMs(h[kind], last - scheduled);
        byMessage[kind].push([scheduled, Math.round((last - scheduled) * 10) / 10]);
      }
    }
  }
  /** Deliveries (or notices) per second, from the first scheduled send to the last arrival. */
  const rate = (kind) => (lastArrival[kind] > firstScheduled ? Math.round(n[kind].deliveries / ((lastArrival[kind] - firstScheduled) / 1000)) : null);
  const inOrder = (kind) => byMessage[kind].sort((a, b) => a[0] - b[0]).map(([, ms]) => ms);
  return { h, received, n, ids: ids.length, rate, byMessage: { message: inOrder("message"), notice: inOrder("notice") } };
}

/**
 * Workload 4: one sender, F.messages messages at F.rate/s to groups of F.sizes members, all online.
 * Relay: a group created through the API (the sender is its admin); up to 256 members fanned out on write
 * (the message arrives in each member's inbox), above that read from the log (members get a `group_notice`
 * and read the log by GET: two rows, "notice" and "message"). ws peers: a room (fan-out on write: one inbox
 * row per member). Room DO: the room's sockets (stored once, broadcast).
 */
async function groupFanout(ctx) {
  const F = profile.fanout;
  for (const [i, size] of F.sizes.entries()) {
    const count = F.messages[i];
    const rate = F.rates[i];
    const params = { members: size, messages: count, rate_per_s: rate };
    // drainMs is the most a slow target may take to finish; a size is started when its typical time is left.
    if (timeLeft(ctx) < (count / rate) * 1000 + 1_500 + profile.marginMs) {
      ctx.rows.push(row(ctx.target, 4, params, { status: "skipped", note: "time budget" }));
      continue;
    }
    const { sender, members, room } = ctx.ids.members(size);
    if (members.length < size) {
      ctx.rows.push(row(ctx.target, 4, params, { status: "skipped", note: `only ${members.length + 1} users registered` }));
      continue;
    }
    let spec = {};
    let create;
    let mode = ctx.kind === "room" ? "broadcast (stored once)" : "write";
    const setupStart = performance.now();
    if (ctx.kind === "relay") {
      const state = await relayApi(ctx, sender, "POST", "/v1/groups", { members: members.map((m) => m.userId) });
      spec = { id: state.groupId, epoch: state.epoch, mode: state.fanout, fetch: state.fanout === "read", baseUrl: ctx.baseUrl };
      mode = state.fanout;
    } else if (ctx.kind === "ws") {
      spec = { room };
      create = { room, members: members.map((m) => m.userId), mode: "write" };
    } else if (ctx.kind === "xmpp") {
      spec = { room };
      mode = "MUC room (broadcast to occupants)";
    }
    const createMs = Math.round(performance.now() - setupStart);
    const joined = await joinGroup(ctx, members, room, spec, Math.max(20_000, Math.min(90_000, timeLeft(ctx) / 3)));
    if (joined.ready < joined.members) ctx.notes.push(`workload 4 (${size}): only ${joined.ready} of ${joined.members} members were ready after ${joined.readyMs} ms`);
    const quiet = await waitServerQuiet(ctx, 10_000);
    const window = ctx.monitor.begin();
    const sent = await workers[0]("groupSend", { sender, group: spec, room, count, rate, create, idPrefix: "g" }, 120_000 + (count / rate) * 1000);
    // The last deliveries (and, read by cursor, the members' reads of the log) arrive.
    const drained = await awaitGroupDrain(sent, size, spec.fetch ? ["notice", "message"] : ["message"], 300, Math.min(F.drainMs, Math.max(2_000, timeLeft(ctx) - profile.marginMs)));
    const m = window.end();
    const parts = await Promise.all(workers.map((call) => call("groupCollect", { seqs: sent.seqs }, 60_000)));
    const L = lastMemberLatencies(parts, sent, size, `${ctx.tag}g`);
    const ack = summary(merge([sent.ack]));
    const fetchErrors = parts.flatMap((p) => p.fetchErrors);
    const common = {
      sender_ack_ms: latencyOf(ack),
      ...resources(m),
    };
    const details = {
      fanout: mode,
      sent: count,
      acked: sent.acked,
      failed: sent.failed,
      send_errors: sent.errors,
      expected_per_message: size,
      duplicates: parts.reduce((n, p) => n + p.duplicates, 0),
      drain_wait_ms: drained.waitedMs,
      setup: { connect_ms: joined.connectMs, ready_ms: joined.readyMs, ready: joined.ready, create_ms: createMs, quiet },
      sender_ack_ms: ack,
      ...(fetchErrors.length ? { fetch_errors: fetchErrors.slice(0, 5) } : {}),
    };
    const measures = spec.fetch ? ["notice", "message"] : ["message"];
    for (const measure of measures) {
      const s = summary(L.h[measure]);
      const ok = L.n[measure].complete === count;
      ctx.rows.push(
        row(ctx.target, 4, { ...params, measure }, {
          throughput: L.rate(measure),
          throughput_unit: measure === "notice" ? "member notices/s" : "member deliveries/s",
          latency_ms: latencyOf(s),
          ...common,
          status: ok ? "ok" : "error",
          ...(ok ? {} : { error: `${count - L.n[measure].complete} of ${count} messages did not reach every member (${measure})` }),
          details: {
            ...details,
            deliveries: L.n[measure].deliveries,
            expected: size * count,
            to_last_member_by_message_ms: L.byMessage[measure],
            latency_note:
              measure === "notice"
                ? "latency = scheduled send → the last member's group_notice covering the message (Relay, fan-out on read)"
                : spec.fetch
                  ? "latency = scheduled send → the last member has the message, read from the log by GET after its notice"
                  : "latency = scheduled send → the last member's receipt of the message on its socket",
          },
        }),
      );
      log(
        `  (4) fan-out to ${size} (${mode}${spec.fetch ? `, ${measure}` : ""}): to last member p50 ${s.p50} p99 ${s.p99} ms; ` +
          `sender ack p50 ${ack.p50} p99 ${ack.p99} ms; ${L.n[measure].deliveries}/${size * count} at ${rate} msg/s; server CPU ${m.cpu}%${m.gc ? `; ${describeGc(m.gc)}` : ""}` +
          (fetchErrors.length ? `; fetch errors: ${fetchErrors[0]}` : ""),
      );
    }
  }
}

/** Rows stored, and bytes on disk, of a target's state: what one channel post costs in storage. */
async function storageSnapshot(ctx, groupId) {
  if (ctx.kind === "relay") {
    const files = durableObjectFiles(ctx.stateDir, "GroupDO");
    const rows = await queryFiles(files, "SELECT (SELECT count(*) FROM log WHERE kind = 'message') AS log_messages, (SELECT count(*) FROM fanout) AS fanout_rows, (SELECT count(*) FROM meta WHERE key = 'group_id' AND value = ?) AS mine", groupId);
    const mine = rows.find((r) => r.mine === 1);
    return { bytes: dirBytes(join(ctx.stateDir, "v3")), rows: mine ? mine.log_messages + mine.fanout_rows : null, log_rows: mine?.log_messages ?? null, fanout_rows: mine?.fanout_rows ?? null };
  }
  if (ctx.kind === "room") {
    const files = durableObjectFiles(ctx.stateDir, "Room");
    const rows = await queryFiles(files, "SELECT count(*) AS n FROM _cf_KV");
    return { bytes: dirBytes(ctx.stateDir), rows: rows.reduce((n, r) => n + r.n, 0) };
  }
  return { bytes: ctx.stateDir ? ["", "-wal", "-shm"].reduce((n, x) => n + dirBytesOf(ctx.stateDir + x), 0) : null, rows: null };
}

function dirBytesOf(file) {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

/**
 * Workload 8: a broadcast channel of C.subscribers, C.online of them online; C.posts posts at C.rate/s by its
 * admin. Relay: a channel created and filled through the API (subscribers added by the admin, 1,000 a call),
 * posts signed (XEdDSA) by the admin device's identity key; online subscribers get a `group_notice`. ws peers:
 * a room in "log" mode (stored once, pushed whole to the online members). Room DO: the online subscribers'
 * sockets (the room has no notion of an offline member). Reports the time until the last online subscriber
 * was told, and the rows and bytes written per post.
 */
async function channelPost(ctx) {
  const C = profile.channel;
  const relay = ctx.kind === "relay";
  const subscribersWanted = relay ? Math.min(C.subscribers, (ctx.poolSize ?? 1) - 1) : C.subscribers;
  const { sender, subscribers, room } = ctx.ids.channel(subscribersWanted);
  const online = subscribers.slice(0, Math.min(C.online, subscribers.length));
  const params = { subscribers: subscribers.length, online: online.length, posts: C.posts, rate_per_s: C.rate };
  if (timeLeft(ctx) < (C.posts / C.rate) * 1000 + 2_000 + profile.marginMs) {
    ctx.rows.push(row(ctx.target, 8, params, { status: "skipped", note: "time budget" }));
    return;
  }
  let spec = {};
  let create;
  let setup = {};
  if (relay) {
    // One channel per run, shared by both Relay targets (they share state): created, filled and settled once.
    let channel = ctx.relayState.channel;
    if (!channel) {
      const t = performance.now();
      const state = await relayApi(ctx, sender, "POST", "/v1/groups", { kind: "channel" });
      for (let i = 0; i < subscribers.length; i += 1_000) {
        await relayApi(ctx, sender, "POST", `/v1/groups/${state.groupId}/members`, { members: subscribers.slice(i, i + 1_000).map((u) => u.userId) });
      }
      const addedMs = performance.now() - t;
      // The subscriptions reach each subscriber's UserDO in the background (durable fan-out of the membership):
      // wait for the last in the GroupDO's order (user id), then for the server to go quiet.
      const lastUser = subscribers.reduce((a, b) => (a.userId > b.userId ? a : b));
      let listed = false;
      while (!listed && performance.now() - t < 180_000) {
        listed = (await relayApi(ctx, lastUser, "GET", "/v1/groups")).groups.some((g) => g.groupId === state.groupId);
        if (!listed) await sleep(500);
      }
      const quiet = await waitServerQuiet(ctx, 60_000);
      channel = ctx.relayState.channel = { id: state.groupId, epoch: state.epoch, subscribers: subscribers.length, setup: { add_ms: Math.round(addedMs), settled_ms: Math.round(performance.now() - t), last_listed: listed, quiet, via: ctx.target.id } };
      log(`  (8) channel of ${subscribers.length} subscribers: added in ${Math.round(addedMs)} ms, settled after ${Math.round(performance.now() - t)} ms`);
    }
    spec = { id: channel.id, epoch: channel.epoch, mode: "read", fetch: false, baseUrl: ctx.baseUrl };
    setup = channel.setup;
  } else if (ctx.kind === "ws") {
    spec = { room };
    create = { room, members: subscribers.map((u) => u.userId), mode: "log" };
  }
  const joined = await joinGroup(ctx, online, room, spec, Math.max(30_000, Math.min(120_000, timeLeft(ctx) / 3)));
  if (joined.ready < joined.members) ctx.notes.push(`workload 8: only ${joined.ready} of ${joined.members} online subscribers were ready after ${joined.readyMs} ms`);
  const quiet = await waitServerQuiet(ctx, 15_000);
  const before = await storageSnapshot(ctx, spec.id);
  const sizesBefore = ctx.stateDir ? fileSizes(ctx.kind === "ws" ? dirname(ctx.stateDir) : ctx.stateDir) : null;
  const window = ctx.monitor.begin();
  const sign = relay ? { identityPrivate: sender.identityPrivate, userId: sender.userId, deviceId: sender.deviceId } : undefined;
  const sent = await workers[0]("groupSend", { sender, group: spec, room, count: C.posts, rate: C.rate, create, sign, idPrefix: "c" }, 180_000);
  const drained = await awaitGroupDrain(sent, online.length, [relay ? "notice" : "message"], 300, Math.min(C.drainMs, Math.max(2_000, timeLeft(ctx) - profile.marginMs)));
  const m = window.end();
  await sleep(500);
  const after = await storageSnapshot(ctx, spec.id);
  const grown = sizesBefore ? grownFiles(sizesBefore, fileSizes(ctx.kind === "ws" ? dirname(ctx.stateDir) : ctx.stateDir)) : null;
  const parts = await Promise.all(workers.map((call) => call("groupCollect", { seqs: sent.seqs }, 120_000)));
  const measure = relay ? "notice" : "message";
  const L = lastMemberLatencies(parts, sent, online.length, `${ctx.tag}c`);
  const s = summary(L.h[measure]);
  const ack = summary(merge([sent.ack]));
  const posts = sent.acked || 1;
  const rowsPerPost =
    sent.statsBefore && sent.statsAfter
      ? (sent.statsAfter.inboxRows + sent.statsAfter.logRows - sent.statsBefore.inboxRows - sent.statsBefore.logRows) / posts
      : before.rows !== null && after.rows !== null
        ? (after.rows - before.rows) / posts
        : null;
  // A subscriber (offline during the posts) reads the log: every post is there, once.
  let readBack = null;
  if (relay && subscribers.length > online.length) {
    const reader = subscribers[subscribers.length - 1];
    const page = await relayApi(ctx, reader, "GET", `/v1/groups/${spec.id}/messages?after=${Math.max(0, Math.min(...Object.values(sent.seqs).filter(Boolean)) - 1)}`);
    readBack = page.entries.filter((e) => e.kind === "group_message" && e.id in sent.seqs && e.signature).length;
  }
  const ok = L.n[measure].complete === C.posts && sent.failed === 0;
  ctx.rows.push(
    row(ctx.target, 8, { ...params, measure }, {
      throughput: L.rate(measure),
      throughput_unit: measure === "notice" ? "subscriber notices/s" : "subscriber deliveries/s",
      latency_ms: latencyOf(s),
      sender_ack_ms: latencyOf(ack),
      ...resources(m),
      rows_per_post: rowsPerPost === null ? null : Math.round(rowsPerPost * 100) / 100,
      // Growth of the files that grew (a WAL checkpoint can shrink the directory as a whole meanwhile).
      bytes_per_post: grown ? Math.round(Object.values(grown).reduce((n, g) => n + g.bytes, 0) / posts) : null,
      status: ok ? "ok" : "error",
      ...(ok ? {} : { error: `${C.posts - L.n[measure].complete} of ${C.posts} posts did not reach every online subscriber; send errors ${JSON.stringify(sent.errors)}` }),
      details: {
        subscribers: subscribers.length,
        online: online.length,
        offline: subscribers.length - online.length,
        ...(ctx.kind === "room" ? { offline_note: "the room DO has no membership: only connected sockets are members" } : {}),
        sent: C.posts,
        acked: sent.acked,
        failed: sent.failed,
        send_errors: sent.errors,
        notices_or_deliveries: L.n[measure].deliveries,
        storage_before: before,
        files_grown: grown,
        storage_after: after,
        stats_before: sent.statsBefore,
        stats_after: sent.statsAfter,
        read_back_signed: readBack,
        to_last_received_ms: summary(L.received[measure]),
        drain_wait_ms: drained.waitedMs,
        setup: { ...setup, connect_ms: joined.connectMs, ready_ms: joined.readyMs, ready: joined.ready, quiet },
        sender_ack_ms: ack,
        latency_note:
          measure === "notice"
            ? "latency = scheduled post → the last online subscriber's group_notice covering it (they would then read the log)"
            : "latency = scheduled post → the last online subscriber has the post on its socket",
        storage_note: "rows: stored rows added per post (Relay: the GroupDO's log and fan-out rows; ws: inbox + room log rows; room DO: KV rows of every room); bytes: growth of the state's files that grew, per post (SQLite files with their -wal; files_grown says which)",
      },
    }),
  );
  log(
    `  (8) channel post to ${subscribers.length} (${online.length} online): to last online subscriber p50 ${s.p50} p99 ${s.p99} ms (${measure}); ` +
      `sender ack p50 ${ack.p50} ms; rows/post ${rowsPerPost}; ` +
      `read back ${readBack ?? "—"}; files grown ${JSON.stringify(grown)}; server CPU ${m.cpu}%${sent.failed ? `; errors ${JSON.stringify(sent.errors)}` : ""}`,
  );
}

/**
 * Workload 5: authenticated heartbeating sockets, opened in stages (a fifth of the target each) so that when
 * the server fails (e.g. at the open-files limit) the last good stage still gives sockets held, bytes and
 * fds per connection.
 */
async function idleConnections(ctx) {
  const I = profile.idle;
  const want = socketCount(ctx, I);
  if (want === 0) return;
  // The storm comes next and takes seconds: its time is kept back from the idle stages.
  const stormMs = workloads.has(6) ? (profile.stormNeedsMs ?? 0) : 0;
  if (timeLeft(ctx) < I.holdMs + 3_000 + profile.marginMs + stormMs) {
    ctx.rows.push(row(ctx.target, 5, { sockets: want }, { status: "skipped", note: "time budget" }));
    return;
  }
  const identities = ctx.ids.idle(want);
  await sleep(500);
  const before = ctx.monitor.snapshot();
  const samePids = (snap) => snap.pids.length > 0 && snap.pids.join() === before.pids.join();
  const t = performance.now();
  const stages = [];
  const STAGES = 5;
  let connected = 0;
  let failed = 0;
  let firstFailure;
  const connectHists = [];
  let died = null;
  for (let k = 0; k < STAGES; k++) {
    const slice = identities.slice(Math.floor((want * k) / STAGES), Math.floor((want * (k + 1)) / STAGES));
    const split = workers.map((_, w) => slice.filter((_, i) => i % workers.length === w));
    const opened = await Promise.all(
      workers.map((call, w) => call("idleConnect", { identities: split[w], heartbeatMs: I.heartbeatMs, concurrency: 64 }, Math.max(60_000, timeLeft(ctx)))),
    );
    connected += opened.reduce((n, o) => n + o.connected, 0);
    failed += opened.reduce((n, o) => n + o.failed, 0);
    firstFailure ??= opened.find((o) => o.firstFailure)?.firstFailure;
    connectHists.push(...opened.map((o) => o.connect));
    await sleep(300);
    const snap = ctx.monitor.snapshot();
    if (!samePids(snap)) {
      died = { afterSockets: connected, lastGood: stages.at(-1) ?? null, pidsBefore: before.pids, pidsNow: snap.pids };
      break;
    }
    stages.push({ sockets: connected, rssKb: snap.rssKb, fds: snap.fds });
    if (timeLeft(ctx) < I.holdMs + profile.marginMs + stormMs) break;
  }
  const connectMs = performance.now() - t;
  let m = null;
  let reports = [];
  let after = null;
  if (!died) {
    await sleep(700);
    await Promise.all(workers.map((call) => call("idleMark", {}, 30_000)));
    const window = ctx.monitor.begin();
    await sleep(I.holdMs);
    m = window.end();
    reports = await Promise.all(workers.map((call) => call("idleReport", {}, 30_000)));
    after = ctx.monitor.snapshot();
    if (!samePids(after)) died = { afterSockets: connected, lastGood: stages.at(-1) ?? null, pidsBefore: before.pids, pidsNow: after.pids, duringHold: true };
  }
  await Promise.all(workers.map((call) => call("idleClose", {}, 180_000)));
  const good = died ? died.lastGood : stages.at(-1);
  const held = good?.sockets ?? 0;
  const perConn = (delta) => (held ? Math.round((delta / held) * 100) / 100 : null);
  const pong = summary(merge(reports.map((r) => r.pong)));
  const note = died
    ? `the serving process exited ${died.duringHold ? "while holding" : "while opening"} ${died.afterSockets} sockets (first client error: ${firstFailure ?? "none"}); figures are from the last good stage, ${held} sockets`
    : failed
      ? `${failed} of ${want} connects failed (first: ${firstFailure})`
      : undefined;
  const r = row(ctx.target, 5, { sockets: want, heartbeat_s: I.heartbeatMs / 1000, hold_s: I.holdMs / 1000 }, {
    throughput: held,
    throughput_unit: "sockets held",
    latency_ms: latencyOf(pong),
    cpu: m?.cpu ?? null,
    other_cpu: m?.other_cpu ?? null,
    steal_cpu: m?.steal_cpu ?? null,
    ...(m?.gc && { gc: m.gc }),
    rss_mb: m ? m.rss_mb : good ? Math.round(good.rssKb / 102.4) / 10 : null,
    fds: m ? m.fds : good?.fds ?? null,
    bytes_per_conn: good ? perConn((Math.max(good.rssKb, after?.rssKb ?? 0) - before.rssKb) * 1024) : null,
    fds_per_conn: good ? perConn(good.fds - before.fds) : null,
    ...(note ? { note } : {}),
    ...(died ? { failure: died } : {}),
    details: {
      requested: want,
      connected,
      failed,
      first_failure: firstFailure,
      stages,
      connect_ms: Math.round(connectMs),
      connect_latency_ms: summary(merge(connectHists)),
      rss_mb_before: Math.round(before.rssKb / 102.4) / 10,
      fds_before: before.fds,
      pings: reports.reduce((n, x) => n + x.pings, 0),
      pongs: reports.reduce((n, x) => n + x.pongs, 0),
      latency_note: "latency = heartbeat ping → pong round trip; CPU over the hold window",
      ...(ctx.kind === "relay" ? { relay_note: "each socket is a user with its own UserDO and its SQLite files (included per connection)" } : {}),
    },
  });
  if (died) {
    r.status = "ok";
    ctx.notes.push(`workload 5: ${note}`);
  }
  ctx.rows.push(r);
  log(
    `  (5) idle: ${held} sockets held of ${want} (${failed} failed${firstFailure ? `: ${firstFailure}` : ""})${died ? " — SERVER PROCESS EXITED" : ""}; ` +
      `${r.bytes_per_conn} B and ${r.fds_per_conn} fds per connection; CPU while idle ${m?.cpu ?? "—"}%; pong p99 ${pong.p99} ms`,
  );
}

async function reconnectStorm(ctx) {
  const S = profile.storm;
  const want = socketCount(ctx, S);
  if (want === 0) return;
  if (timeLeft(ctx) < 2_000 + profile.marginMs) {
    ctx.rows.push(row(ctx.target, 6, { connections: want }, { status: "skipped", note: "time budget" }));
    return;
  }
  const identities = ctx.ids.storm(want);
  const split = workers.map((_, w) => identities.filter((_, i) => i % workers.length === w));
  await sleep(500);
  const window = ctx.monitor.begin();
  const parts = await Promise.all(
    workers.map((call, w) => call("storm", { identities: split[w], concurrency: Math.ceil(S.concurrency / workers.length) }, Math.max(60_000, timeLeft(ctx)))),
  );
  const m = window.end();
  const connected = parts.reduce((n, p) => n + p.connected, 0);
  const failed = parts.reduce((n, p) => n + p.failed, 0);
  const ms = Math.max(...parts.map((p) => p.ms));
  const lat = summary(merge(parts.map((p) => p.connect)));
  ctx.rows.push(
    row(ctx.target, 6, { connections: want, concurrency: S.concurrency }, {
      throughput: Math.round(connected / (ms / 1000)),
      throughput_unit: "connects/s (token verified)",
      latency_ms: latencyOf(lat),
      ...resources(m),
      status: failed ? "error" : "ok",
      ...(failed ? { error: `${failed} connects failed: ${parts.find((p) => p.firstFailure)?.firstFailure}` } : {}),
      details: { connected, failed, ms: Math.round(ms), latency_note: "latency = connect start → the server's ready frame" },
    }),
  );
  log(`  (6) storm: ${connected}/${want} in ${Math.round(ms)} ms (${Math.round(connected / (ms / 1000))}/s); connect p50 ${lat.p50} p99 ${lat.p99} ms`);
}

/**
 * Waits (up to `maxMs`) until processes outside the bench use less than 10 % of a core over a second, so a
 * target does not start while the previous one's teardown (or anything else) still loads the machine.
 * Stolen time (the hypervisor's other guests) counts as load too. Resolves with { waitedMs, otherCpu }.
 */
async function waitQuiet(maxMs) {
  const t = performance.now();
  let other = null;
  while (performance.now() - t < maxMs) {
    const ours = [process.pid, ...loadPids];
    const before = ours.map(cpuTicks);
    const m0 = machineTicks();
    const t1 = performance.now();
    await sleep(1_000);
    const seconds = (performance.now() - t1) / 1000;
    const oursTicks = ours.reduce((n, pid, i) => n + Math.max(0, cpuTicks(pid) - before[i]), 0);
    const m1 = machineTicks();
    other = Math.round(((Math.max(0, m1.busy - m0.busy - oursTicks) + (m1.steal - m0.steal)) / 100 / seconds) * 1000) / 10;
    if (other < 10) break;
  }
  return { waitedMs: Math.round(performance.now() - t), otherCpu: other };
}

// ───────────────────────────── targets ─────────────────────────────

/** The targets that run on workerd, whose collections --gc-trace counts. */
const WORKERD_TARGETS = new Set(["relay-workerd", "relay-wrangler-dev", "room-do", "inbox-do"]);
/** Where a workerd target's collections are logged with --gc-trace (bench/lib/gc-trace.mjs); null when not traced. */
const gcLogOf = (runDir, id) => (flags["gc-trace"] && WORKERD_TARGETS.has(id) ? join(runDir, `gc-${id}.log`) : null);

async function startTarget(id, env) {
  const { runDir, pinning, sms, relayState } = env;
  const cores = pinning.serverCores;
  const gcLog = gcLogOf(runDir, id);
  const envVars = { ...process.env, ...WRANGLER_ENV, ...(gcLog ? await gcTraceEnv(gcLog) : {}) };
  if (id === "relay-workerd" || id === "relay-wrangler-dev") {
    const start = () =>
      id === "relay-workerd"
        ? startRelayDirect({ root: ROOT, persist: relayState.dir, sms, pinning, cores, env: envVars })
        : startRelayDev({ root: ROOT, persist: relayState.dir, sms, pinning, cores, env: envVars });
    let handle = await start();
    const need = Math.max(
      profile.pairs * 2 + profile.backlog.length * 2,
      workloads.has(5) ? profile.idle.relay : 0,
      workloads.has(6) ? profile.storm.relay : 0,
      workloads.has(4) ? Math.max(...profile.fanout.sizes) + 1 : 0,
      workloads.has(8) ? profile.channel.subscribers + 1 : 0,
    );
    if (relayState.users.length < need) {
      const t = performance.now();
      // Registration is the rig's slowest step (~50/s): spend at most a third (full run with a channel: 60 %) of this target's time on it.
      const regDeadline = Date.now() + Math.max(15_000, env.targetBudgetMs * (workloads.has(8) ? (profile.registrationShare ?? 1 / 3) : 1 / 3));
      const serverPids = handle.servingPids();
      const serverBefore = serverPids.map(cpuTicks);
      const more = await registerUsers(handle.baseUrl, sms, relayState.users.length, need - relayState.users.length, regDeadline);
      const seconds = (performance.now() - t) / 1000;
      relayState.users.push(...more);
      relayState.registration = {
        users: relayState.users.length,
        perSecond: Math.round((more.length / seconds) * 10) / 10,
        serverCpu: cpuPercent(serverPids, serverBefore, seconds),
        via: id,
      };
      log(`  registered ${more.length} users in ${seconds.toFixed(1)} s (${relayState.registration.perSecond}/s; server CPU ${relayState.registration.serverCpu}%)`);
      // A local workerd keeps every object a registration woke in memory (not evicted within a minute here), and a
      // process holding 4,000 idle users' objects delivered 1:1 messages at p99 245–297 ms where a fresh one on the
      // same state took ~100 ms (1,000 msg/s; README "Performance"). Deployed, idle objects are evicted and spread
      // over machines, so the workloads start on a fresh process, as the other Relay target does.
      await handle.stop();
      handle = await start();
      relayState.registration.restarted = true;
      log("  restarted the server on the same state (it held every registered user's object)");
    }
    if (relayState.users.length < profile.pairs * 2 + profile.backlog.length * 2) throw new Error(`only ${relayState.users.length} users registered in time`);
    return {
      ...handle,
      stateDir: relayState.dir,
      kind: "relay",
      server: id === "relay-workerd" ? "workerd (user worker URL, no dev proxy)" : "wrangler dev (through its dev proxy)",
      ids: identitiesFor("relay", relayState.users),
      poolSize: relayState.users.length,
      target: { kind: "relay", baseUrl: handle.baseUrl },
    };
  }
  if (id === "ws-memory" || id === "ws-sqlite") {
    const store = id === "ws-memory" ? "memory" : "sqlite";
    const db = join(runDir, `${id}.db`);
    const command = pinned(pinning, cores, [process.execPath, join(ROOT, "bench", "peers", "ws-relay.mjs"), "--store", store, "--db", db, "--public-key", PEER_PUBLIC_KEY]);
    const server = spawnGroup(command, { cwd: ROOT });
    let port;
    for (let i = 0; i < 200 && !port; i++) {
      const line = server.log.find((l) => l.startsWith('{"ready"'));
      if (line) port = JSON.parse(line).port;
      else if (server.exited()) throw new Error(`${id} exited:\n${server.log.join("\n")}`);
      else await sleep(50);
    }
    if (!port) {
      await server.stop();
      throw new Error(`${id} did not start`);
    }
    const baseUrl = `http://127.0.0.1:${port}`;
    return {
      baseUrl,
      kind: "ws",
      server: `node ${process.version} (ws ${versionOf(join(ROOT, "node_modules/ws/package.json"))})`,
      servingPids: () => [server.pgid],
      allPids: () => [server.pgid],
      stop: () => server.stop(),
      log: server.log,
      ids: identitiesFor("ws"),
      stateDir: store === "sqlite" ? db : null,
      target: { kind: "ws", baseUrl },
    };
  }
  if (id === "room-do" || id === "inbox-do") {
    // A copy in the run directory: wrangler writes its bundle beside the config (.wrangler/), not in the repo.
    const src = join(runDir, `${id}-src`);
    mkdirSync(src, { recursive: true });
    for (const f of ["worker.js", "wrangler.toml"]) copyFileSync(join(ROOT, "bench", "peers", id, f), join(src, f));
    copyFileSync(join(ROOT, "bench", "peers", "workerd-edge.js"), join(runDir, "workerd-edge.js")); // ../ of worker.js, as in the repo
    const handle = await startWorkerd({
      root: ROOT,
      config: join(src, "wrangler.toml"),
      persist: join(runDir, id),
      migrate: false,
      bindings: { PUBLIC_KEY: { type: "plain_text", value: PEER_PUBLIC_KEY } },
      pinning,
      cores,
      env: envVars,
    });
    const kind = KIND[id];
    // The inbox peer: 1:1 only, and each of its sockets is a user's object, as Relay's are.
    const bare = id === "inbox-do" ? { groups: false, objectPerUser: true } : {};
    return { ...handle, ...bare, stateDir: join(runDir, id), kind, server: "workerd (user worker URL, no dev proxy)", ids: identitiesFor(kind), target: { kind, baseUrl: handle.baseUrl } };
  }
  if (id === "ejabberd") {
    const installed = ensureEjabberd({ install: profile.installEjabberd && !flags["no-install"], log });
    if (!installed.ok) return { skipped: installed.note };
    env.versions.ejabberd = installed.version;
    const dir = join(runDir, "ejabberd");
    mkdirSync(dir, { recursive: true });
    const users = [];
    for (let i = 0; i < profile.pairs; i++) users.push({ user: `p${i}s`, password: "bench" }, { user: `p${i}r`, password: "bench" });
    for (let k = 0; k < profile.backlog.length; k++) users.push({ user: `b${k}s`, password: "bench" }, { user: `b${k}r`, password: "bench" });
    for (const size of profile.fanout.sizes) {
      users.push({ user: `g${size}s`, password: "bench" });
      for (let i = 0; i < size; i++) users.push({ user: `g${size}m${i}`, password: "bench" });
    }
    const port = await freePort();
    const server = await startEjabberd({ dir, port, distPort: await freePort(), users, pinning, cores });
    const { groupProcesses } = await import("./lib/proc.mjs");
    return {
      kind: "xmpp",
      server: `ejabberd ${installed.version} (beam.smp; offline spool in SQLite)`,
      servingPids: () => groupProcesses(server.pgid).filter((p) => p.comm.startsWith("beam")).map((p) => p.pid),
      allPids: () => groupProcesses(server.pgid).map((p) => p.pid),
      stop: () => server.stop(),
      log: server.log,
      ids: identitiesFor("xmpp"),
      spoolDb: server.dbPath,
      target: { kind: "xmpp", port, mucHost: MUC_HOST },
    };
  }
  throw new Error(`unknown target ${id}`);
}

// ───────────────────────────── main ─────────────────────────────

async function main() {
  const started = Date.now();
  const deadline = started + profile.budgetMs;
  const pinning = pinningPlan(MACHINE_CPUS, flags["no-pin"]);
  if (pinning.pin) execFileSync("taskset", ["-a", "-cp", pinning.loadCores, String(process.pid)], { stdio: "ignore" });
  const base = flags.storage === "tmpfs" ? "/dev/shm" : tmpdir();
  const runDir = mkdtempSync(join(base, "relay-bench-"));
  chmodSync(runDir, 0o755); // ejabberd runs as its own user
  const storage = { kind: flags.storage, path: runDir, fs: fsType(runDir) };
  const versions = {
    node: process.version,
    wrangler: versionOf(join(ROOT, "node_modules/wrangler/package.json")),
    workerd: workerdVersion(),
    ws: versionOf(join(ROOT, "node_modules/ws/package.json")),
    xmppClient: versionOf(join(ROOT, "node_modules/@xmpp/client/package.json")),
  };
  const settings = {
    observability: "off (X_LOCAL_OBSERVABILITY=false in the environment of every wrangler/workerd process)",
    devProxy: {
      "relay-workerd": "skipped: load sent to the user worker's own URL (proxyData.userWorkerUrl)",
      "relay-wrangler-dev": "through wrangler dev's proxy (the real `npm start`)",
      "room-do": "skipped: load sent to the user worker's own URL",
      "inbox-do": "skipped: load sent to the user worker's own URL",
      "ws-memory": "n/a (plain Node server)",
      "ws-sqlite": "n/a (plain Node server)",
      ejabberd: "n/a (plain TCP c2s)",
    },
    pinning: pinning.pin
      ? `every server (its whole process group) taskset -c ${pinning.serverCores}; ${profile.loadWorkers} load workers + orchestrator taskset -c ${pinning.loadCores}`
      : `none (${pinning.why})`,
    storage: `${storage.kind} (${storage.fs} at ${base})`,
    storageNote: "Relay's and the room DO's state (--persist-to), ws-sqlite's database and ejabberd's SQLite database all live there",
  };
  log(`relay bench (${mode}): targets ${targetIds.join(", ")}; workloads ${[...workloads].join(",")}; budget ${profile.budgetMs / 1000} s`);
  log(`settings: observability off; ${settings.pinning}; storage ${storage.kind} (${storage.fs})`);

  // Load workers: separate processes, each with its own 127.0.0.x source addresses.
  const children = [];
  const addrsOf = (w) => Array.from({ length: 4 }, (_, j) => `127.0.0.${10 + w * 4 + j}`);
  workers = await Promise.all(
    Array.from({ length: profile.loadWorkers }, async (_, w) => {
      const command = pinned(pinning, pinning.loadCores, [
        process.execPath,
        "--disable-warning=ExperimentalWarning",
        join(ROOT, "bench", "lib", "load-worker.mjs"),
        "--index",
        String(w),
        "--addrs",
        addrsOf(w).join(","),
      ]);
      const { spawn } = await import("node:child_process");
      const child = spawn(command[0], command.slice(1), { cwd: ROOT, stdio: ["ignore", "inherit", "pipe", "ipc"] });
      children.push(child);
      child.stderr.on("data", (d) => process.stderr.write(`[load ${w}] ${d}`));
      await withTimeout(new Promise((resolve) => child.on("message", (m) => m?.type === "up" && resolve())), 30_000, `load worker ${w}`);
      return rpcChild(child, `load worker ${w}`);
    }),
  );
  loadPids = children.map((c) => c.pid);
  const cleanup = () => {
    for (const child of children) if (child.exitCode === null) child.kill("SIGKILL");
    killAllGroups();
    rmSync(runDir, { recursive: true, force: true });
  };
  process.on("exit", cleanup);
  process.once("SIGINT", () => process.exit(130));
  process.once("SIGTERM", () => process.exit(143));
  setTimeout(() => {
    console.error("bench: over budget by 90 s, stopping");
    process.exit(2);
  }, profile.budgetMs + 90_000).unref();

  const sms = await startSmsCapture();
  const relayState = { dir: join(runDir, "relay"), users: [] };
  const rows = [];
  const notes = [];
  const targets = {};
  let reference = null;
  try {
    for (const [i, id] of targetIds.entries()) {
      const remainingWeight = targetIds.slice(i).reduce((n, t) => n + (profile.weights[t] ?? 1), 0);
      const targetBudgetMs = ((deadline - Date.now()) * (profile.weights[id] ?? 1)) / remainingWeight;
      const target = { id, label: LABELS[id], kind: KIND[id] };
      targets[id] = { label: LABELS[id], status: "ok" };
      if (targetBudgetMs < 10_000) {
        targets[id] = { label: LABELS[id], status: "skipped", note: "time budget" };
        notes.push(`${id}: skipped (time budget)`);
        continue;
      }
      log(`\n▶ ${LABELS[id]} (${Math.round(targetBudgetMs / 1000)} s)`);
      const quiet = await waitQuiet(mode === "full" ? 30_000 : 5_000);
      if (quiet.waitedMs > 1_500) log(`  waited ${quiet.waitedMs} ms for the machine to settle (other CPU ${quiet.otherCpu}%)`);
      const t0 = performance.now();
      let handle;
      try {
        handle = await startTarget(id, { runDir, pinning, sms, relayState, targetBudgetMs, versions });
      } catch (error) {
        targets[id] = { label: LABELS[id], status: "error", note: String(error?.message ?? error).split("\n").slice(0, 6).join("\n") };
        notes.push(`${id}: could not start: ${String(error?.message ?? error).split("\n")[0]}`);
        rows.push(row({ id, server: "—" }, "start", {}, { status: "error", error: String(error?.message ?? error).split("\n").slice(0, 6).join("\n") }));
        log(`  could not start: ${error?.message ?? error}`);
        continue;
      }
      if (handle.skipped) {
        targets[id] = { label: LABELS[id], status: "skipped", note: handle.skipped };
        notes.push(`${id}: skipped: ${handle.skipped}`);
        log(`  skipped: ${handle.skipped}`);
        continue;
      }
      target.server = handle.server;
      targets[id].server = handle.server;
      targets[id].settle = quiet;
      targets[id].startMs = Math.round(performance.now() - t0);
      const ctx = {
        target,
        kind: handle.kind,
        objectPerUser: handle.objectPerUser ?? false,
        ids: handle.ids,
        poolSize: handle.poolSize,
        spoolDb: handle.spoolDb,
        baseUrl: handle.target.baseUrl,
        stateDir: handle.stateDir,
        relayState,
        sentAcks: handle.kind !== "xmpp",
        monitor: new Monitor(handle.servingPids, {
          ours: () => [...(handle.allPids?.() ?? handle.servingPids()), ...loadPids],
          gc: gcLogOf(runDir, id) ? (fromMs, toMs) => summarizeGc(readGcLog(gcLogOf(runDir, id)), fromMs, toMs) : undefined,
        }),
        rows: [],
        notes: [],
        tag: `${Date.now().toString(36)}-`,
        deadline: Date.now() + targetBudgetMs - (performance.now() - t0),
        reserveMs:
          handle.groups !== false && (workloads.has(4) || (workloads.has(8) && handle.kind !== "xmpp"))
            ? Math.min(targetBudgetMs / 2, profile.groupReserveMs?.[handle.kind === "relay" ? "relay" : "other"] ?? 0)
            : 0,
      };
      try {
        await Promise.all(workers.map((call) => call("setup", { target: { ...handle.target, tag: ctx.tag } }, 30_000)));
        if (workloads.has(1) || workloads.has(2)) await runWorkload(ctx, "1/2", () => throughputAndLatency(ctx, id === "relay-workerd" ? null : reference));
        // Workload 2 offers every target the same rates; when no step of Relay's sustained, those of its lowest step.
        if (id === "relay-workerd" && workloads.has(1)) {
          reference = ctx.maxSustained
            ? { rate: ctx.maxSustained, from: "relay-workerd max sustained" }
            : { rate: profile.ladder.start, from: "relay-workerd's lowest step (none sustained)" };
        }
        if (workloads.has(3)) await runWorkload(ctx, 3, () => backlogDrain(ctx));
        if (handle.kind === "xmpp") {
          if (workloads.has(5) || workloads.has(6)) ctx.rows.push(row(target, "5/6", {}, { status: "skipped", note: "ejabberd is measured on workloads 1–4 only" }));
        } else {
          if (workloads.has(5)) await runWorkload(ctx, 5, () => idleConnections(ctx));
          if (workloads.has(6)) await runWorkload(ctx, 6, () => reconnectStorm(ctx));
        }
        // Group fan-out and the channel last: their groups would otherwise be watched by every later connect.
        ctx.reserveMs = 0;
        if (handle.groups === false) {
          if (workloads.has(4) || workloads.has(8)) ctx.rows.push(row(target, "4/8", {}, { status: "skipped", note: "this peer has 1:1 messages only" }));
        } else if (workloads.has(4)) await runWorkload(ctx, 4, () => groupFanout(ctx));
        if (workloads.has(8) && handle.groups !== false) {
          if (handle.kind === "xmpp") ctx.rows.push(row(target, 8, {}, { status: "skipped", note: "ejabberd is measured on workloads 1–4 only (a MUC room is not a channel read by cursor)" }));
          else await runWorkload(ctx, 8, () => channelPost(ctx));
        }
      } catch (error) {
        const message = String(error?.message ?? error);
        ctx.rows.push(row(target, "run", {}, { status: "error", error: message.split("\n").slice(0, 8).join("\n") }));
        targets[id].status = "error";
        targets[id].note = message.split("\n")[0];
        targets[id].logTail = handle.log?.slice(-20);
        log(`  failed: ${message}\n  server log tail:\n    ${(handle.log ?? []).slice(-10).join("\n    ")}`);
      } finally {
        const stopped = await handle.stop();
        targets[id].stopped = stopped?.groupGone ?? true;
        targets[id].seconds = Math.round((performance.now() - t0) / 1000);
      }
      rows.push(...ctx.rows);
      notes.push(...ctx.notes.map((n) => `${id}: ${n}`));
    }
  } finally {
    await Promise.all(workers.map((call) => call("exit", {}, 5_000).catch(() => undefined)));
    await sleep(200);
    for (const child of children) if (child.exitCode === null) child.kill("SIGKILL");
    await sms.close();
    rmSync(runDir, { recursive: true, force: true });
  }

  // SDK crypto beside libsignal's native library, same machine, same run (issue 7); not in --smoke.
  if (mode !== "smoke") {
    try {
      const { cryptoRows } = await import("./crypto/run.mjs");
      rows.push(...cryptoRows(mode === "quick" ? 150 : 500));
    } catch (error) {
      notes.push(`crypto: ${String(error?.message ?? error).split("\n")[0]}`);
    }
  }

  const finished = Date.now();
  const args = process.argv.slice(2);
  const result = {
    benchmark: "relay-bench",
    schema: 1,
    mode,
    startedAt: new Date(started).toISOString(),
    durationS: Math.round((finished - started) / 1000),
    command: {
      npm: process.env.npm_lifecycle_event === "bench" ? `npm run bench${args.length ? ` -- ${args.join(" ")}` : ""}` : null,
      argv: [process.execPath, ...process.argv.slice(1)].join(" "),
      env: WRANGLER_ENV,
    },
    machine: {
      cores: MACHINE_CPUS,
      cpuModel: cpus()[0]?.model,
      memoryGb: Math.round((totalmem() / 2 ** 30) * 10) / 10,
      kernel: release(),
      openFilesLimit: openFilesLimit(),
      ...versions,
    },
    settings,
    profile,
    relayRegistration: relayState.registration ?? null,
    targets,
    rows,
    notes,
  };
  const outDir = flags.out ?? join(ROOT, "bench", "results");
  const chartsDir = mode === "full" && !flags.out && !flags.targets && !flags.workloads ? join(ROOT, "bench", "charts") : join(outDir, "charts");
  const files = writeReports(result, { outDir, chartsDir, stamp: new Date(started).toISOString().replace(/[:.]/g, "-") });
  log(`\nresults: ${files.json}\n         ${files.md}\ncharts:  ${files.charts.join(", ")}\n(total ${result.durationS} s)`);
  const errored = rows.filter((r) => r.status === "error");
  if (errored.length) log(`${errored.length} row(s) with errors: ${errored.map((r) => `${r.peer}/${r.workload}`).join(", ")}`);
  process.exit(0);
}

/** `--redraw results/X.json`: writes that result's Markdown and charts again (charts to bench/charts for a full run). */
function redraw(file) {
  const result = JSON.parse(readFileSync(file, "utf8"));
  const outDir = dirname(file);
  const chartsDir = result.mode === "full" && !flags.out ? join(ROOT, "bench", "charts") : join(flags.out ?? outDir, "charts");
  const files = writeReports(result, { outDir, chartsDir, stamp: basename(file, ".json") });
  log(`${files.md}\n${files.charts.join("\n")}`);
}

if (flags.redraw) redraw(flags.redraw);
else main().catch((error) => {
  console.error(error?.stack ?? error);
  process.exit(1);
});

