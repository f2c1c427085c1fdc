/**
 * Processes of the bench: process groups (every server runs in its own and is stopped as a group: killing only
 * wrangler leaves workerd zombies), /proc readings (CPU ticks, RSS, open file descriptors), CPU pinning with
 * taskset, and a tiny request/response channel over IPC to child processes.
 */
/* global performance, setInterval, clearInterval */
import { execFileSync, spawn } from "node:child_process";
import { appendFileSync, readdirSync, readFileSync, readlinkSync } from "node:fs";

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Rejects with "what: no answer within ms" if `promise` takes longer than `ms`. */
export function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    Promise.resolve(promise).finally(() => clearTimeout(timer)),
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
    }),
  ]);
}

/** Runs `fn` over `items` with at most `limit` in flight; results in input order. */
export async function pool(items, limit, fn) {
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

/** Every live process of group `pgid`: pid, command name, state, parent. */
export function groupProcesses(pgid) {
  const out = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const close = stat.lastIndexOf(")");
      const comm = stat.slice(stat.indexOf("(") + 1, close);
      const fields = stat.slice(close + 2).split(" ");
      if (Number(fields[2]) !== pgid || fields[0] === "Z") continue;
      out.push({ pid: Number(entry), comm, ppid: Number(fields[1]) });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

export function rssKb(pid) {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match ? Number(match[1]) : 0;
  } catch {
    return 0;
  }
}

/** utime + stime of `pid`, in clock ticks (CLK_TCK = 100 on Linux). */
export function cpuTicks(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return 0;
  }
}

/** Open file descriptors of `pid` (entries of /proc/<pid>/fd). */
export function fdCount(pid) {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return 0;
  }
}

/** The pid (among `pids`) holding the listening TCP socket on `port`. */
export function listenerPid(port, pids) {
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
        const inode = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1];
        if (inode && inodes.has(inode)) return pid;
      }
    } catch {
      // not ours to read, or gone
    }
  }
  return undefined;
}

/** Whether core pinning with taskset is possible here (2+ CPUs, taskset present, not disabled). */
export function pinningPlan(cpus, disabled) {
  if (disabled) return { pin: false, why: "disabled by --no-pin" };
  if (cpus < 2) return { pin: false, why: `only ${cpus} CPU` };
  try {
    execFileSync("taskset", ["-cp", String(process.pid)], { stdio: "ignore" });
  } catch {
    return { pin: false, why: "taskset not available" };
  }
  return { pin: true, serverCores: "0", loadCores: cpus > 2 ? `1-${cpus - 1}` : "1" };
}

/** `command` prefixed with `taskset -c cores` when pinning. */
export function pinned(pinning, cores, command) {
  return pinning.pin ? ["taskset", "-c", cores, ...command] : command;
}

const liveGroups = new Set();

/** Kills every server group still running (on any exit of the orchestrator). */
export function killAllGroups() {
  for (const pgid of liveGroups) {
    try {
      process.kill(-pgid, "SIGKILL");
    } catch {
      // gone
    }
  }
}

function groupAlive(pgid) {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Starts `command` in its own process group (setsid) and returns a handle whose stop() signals the whole
 * group (SIGTERM, then SIGKILL) and waits until no process of it is left.
 */
export function spawnGroup(command, { cwd, env, ipc = false, logLines = 300 } = {}) {
  const [file, ...args] = command;
  const child = spawn(file, args, { cwd, env, detached: true, stdio: ["ignore", "pipe", "pipe", ...(ipc ? ["ipc"] : [])] });
  const pgid = child.pid;
  liveGroups.add(pgid);
  const log = [];
  const keep = (chunk) => {
    if (process.env.RELAY_BENCH_SERVER_LOG) appendFileSync(process.env.RELAY_BENCH_SERVER_LOG, chunk);
    log.push(...chunk.toString("utf8").split("\n").filter(Boolean));
    if (log.length > logLines) log.splice(0, log.length - logLines);
  };
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  let exited = false;
  child.once("exit", () => (exited = true));
  const stop = async (graceMs = 10_000) => {
    const signal = (sig) => {
      try {
        process.kill(-pgid, sig);
      } catch {
        // the group is gone
      }
    };
    signal("SIGTERM");
    for (let i = 0; i < graceMs / 100 && groupAlive(pgid); i++) await sleep(100);
    if (groupAlive(pgid)) {
      signal("SIGKILL");
      for (let i = 0; i < 100 && groupAlive(pgid); i++) await sleep(100);
    }
    const gone = !groupAlive(pgid);
    if (gone) liveGroups.delete(pgid);
    child.stdout.destroy();
    child.stderr.destroy();
    return { groupGone: gone, exited };
  };
  return { child, pgid, log, stop, exited: () => exited };
}

/** A child process speaking { id, cmd, args } → { id, ok, result | error } over IPC. */
export function rpcChild(child, name) {
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

/**
 * Samples a server's processes while a workload runs: CPU (percent of one core, from /proc ticks over the
 * window), peak RSS and peak open fds, summed over `pids()` (the processes that serve the traffic).
 */
export class Monitor {
  /**
   * @param pids the processes that serve the traffic (CPU, RSS and fds are theirs)
   * @param ours every process of the bench (server group, load workers, orchestrator): whatever else uses
   *             CPU during a window is reported as `other_cpu`, so a disturbed window can be told apart.
   * @param gc with --gc-trace: (fromMs, toMs) → the server's garbage collections in that window
   */
  constructor(pids, { intervalMs = 250, ours = () => [], gc } = {}) {
    this.pids = pids;
    this.ours = ours;
    this.intervalMs = intervalMs;
    this.gc = gc;
  }

  snapshot() {
    const pids = this.pids();
    return {
      pids,
      rssKb: pids.reduce((n, pid) => n + rssKb(pid), 0),
      fds: pids.reduce((n, pid) => n + fdCount(pid), 0),
    };
  }

  begin() {
    const pids = this.pids();
    const ours = [...new Set([...pids, ...this.ours(), process.pid])];
    const window = { pids, ticks: pids.map(cpuTicks), ours, oursTicks: ours.map(cpuTicks), machine: machineTicks(), t: performance.now(), wall: Date.now(), peakRssKb: 0, peakFds: 0, samples: 0 };
    const sample = () => {
      const s = this.snapshot();
      window.peakRssKb = Math.max(window.peakRssKb, s.rssKb);
      window.peakFds = Math.max(window.peakFds, s.fds);
      window.samples++;
    };
    sample();
    window.timer = setInterval(sample, this.intervalMs);
    window.end = () => {
      clearInterval(window.timer);
      sample();
      const seconds = (performance.now() - window.t) / 1000;
      const ticks = window.pids.reduce((n, pid, i) => n + cpuTicks(pid) - window.ticks[i], 0);
      const oursTicks = window.ours.reduce((n, pid, i) => n + Math.max(0, cpuTicks(pid) - window.oursTicks[i]), 0);
      const now = machineTicks();
      const other = Math.max(0, now.busy - window.machine.busy - oursTicks);
      return {
        cpu: Math.round((ticks / 100 / seconds) * 1000) / 10,
        other_cpu: Math.round((other / 100 / seconds) * 1000) / 10,
        steal_cpu: Math.round(((now.steal - window.machine.steal) / 100 / seconds) * 1000) / 10,
        rss_mb: Math.round(window.peakRssKb / 102.4) / 10,
        fds: window.peakFds,
        seconds: Math.round(seconds * 100) / 100,
        pids: window.pids,
        ...(this.gc && { gc: this.gc(window.wall, Date.now()) }),
      };
    };
    return window;
  }
}

/**
 * Clock ticks of the whole machine so far (all CPUs): `busy` = user + nice + system (interrupt and softirq
 * time are left out: loopback networking runs there, and it is the bench's own traffic), `steal` = time the
 * hypervisor gave to someone else while this machine wanted to run.
 */
export function machineTicks() {
  const f = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
  return { busy: f[0] + f[1] + f[2], steal: f[7] ?? 0 };
}

/** CPU percent of one core used by `pids` between two tick readings taken `seconds` apart. */
export function cpuPercent(pids, before, seconds) {
  const ticks = pids.reduce((n, pid, i) => n + cpuTicks(pid) - before[i], 0);
  return Math.round((ticks / 100 / seconds) * 1000) / 10;
}
