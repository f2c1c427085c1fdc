/**
 * The benchmark harness runs and its output is well-formed (`npm run bench -- --smoke`: Relay direct on
 * workerd and the two Node ws peers, a few hundred messages; then the bare inbox peer, which runs only when named). No figure is asserted: numbers depend on the
 * machine; this proves the harness, its load workers, peers and reports work end to end.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("../../..", import.meta.url));
const out = mkdtempSync(join(tmpdir(), "relay-bench-smoke-"));

interface Row {
  workload: string;
  peer: string;
  params: Record<string, unknown>;
  status: string;
  throughput: number | null;
  latency_ms: { p50: number | null; p99: number | null; p999: number | null };
  cpu: number | null;
  rss_mb: number | null;
  fds: number | null;
  gc?: { young: number; young_max_ms: number; full: number; full_max_ms: number };
  details?: { scheduled: number; delivered: number; acked: number; failed: number; duplicates: number };
  error?: string;
}

/** wrangler and workerd offline and quiet, local observability off (as the `bench` script sets them). */
const OFFLINE = {
  CLOUDFLARE_CF_FETCH_ENABLED: "false",
  WRANGLER_SEND_METRICS: "false",
  DO_NOT_TRACK: "1",
  WRANGLER_HIDE_BANNER: "true",
  X_LOCAL_OBSERVABILITY: "false",
};

afterAll(() => rmSync(out, { recursive: true, force: true }));

describe("npm run bench -- --smoke", () => {
  it("runs Relay and the ws peers and writes well-formed JSON, Markdown and SVG charts", () => {
    const run = spawnSync(process.execPath, ["bench/run.mjs", "--smoke", "--gc-trace", "--out", out], {
      cwd: ROOT,
      encoding: "utf8",
      timeout: 240_000,
      env: {
        ...process.env,
        ...OFFLINE,
      },
    });
    expect(run.status, `${run.stdout}\n${run.stderr}`).toBe(0);

    const jsonFile = readdirSync(out).find((f) => f.endsWith(".json"));
    expect(jsonFile).toBeDefined();
    const result = JSON.parse(readFileSync(join(out, jsonFile!), "utf8"));
    expect(result.mode).toBe("smoke");
    expect(result.machine.cores).toBeGreaterThan(0);
    for (const key of ["node", "workerd", "wrangler"]) expect(typeof result.machine[key]).toBe("string");
    for (const key of ["observability", "devProxy", "pinning", "storage"]) expect(result.settings[key]).toBeTruthy();
    expect(result.command.argv).toContain("bench/run.mjs");

    const rows: Row[] = result.rows;
    expect(rows.length).toBeGreaterThan(0);
    const errored = rows.filter((r) => r.status === "error");
    expect(errored, JSON.stringify(errored, null, 2)).toEqual([]);
    for (const id of ["relay-workerd", "ws-memory", "ws-sqlite"]) {
      expect(result.targets[id]?.status, id).toBe("ok");
      expect(rows.some((r) => r.peer === id && r.status === "ok")).toBe(true);
    }
    for (const r of rows) {
      for (const key of ["workload", "peer", "params", "throughput", "latency_ms", "cpu", "rss_mb", "fds"]) expect(r, `${r.peer} ${r.workload}`).toHaveProperty(key);
      expect(Object.keys(r.latency_ms).sort()).toEqual(["p50", "p99", "p999"]);
      if (r.status !== "ok") continue;
      for (const v of [r.throughput, r.cpu, r.rss_mb, r.fds]) expect(Number.isFinite(v), `${r.peer} ${r.workload} ${JSON.stringify(r)}`).toBe(true);
      if (r.workload !== "1:1 max sustained" || r.throughput) {
        for (const v of Object.values(r.latency_ms)) expect(Number.isFinite(v), `${r.peer} ${r.workload} latency`).toBe(true);
      }
    }
    // --gc-trace: every row of the workerd target says how often its collector paused; the Node peers' rows do not.
    for (const r of rows.filter((x) => x.status === "ok")) {
      if (r.peer !== "relay-workerd") expect(r.gc, `${r.peer} ${r.workload}`).toBeUndefined();
      else for (const key of ["young", "young_max_ms", "full", "full_max_ms"] as const) expect(Number.isFinite(r.gc?.[key]), `${r.workload} gc ${key}`).toBe(true);
    }
    expect(rows.filter((r) => r.peer === "relay-workerd").reduce((n, r) => n + (r.gc?.young ?? 0) + (r.gc?.full ?? 0), 0)).toBeGreaterThan(0);

    // Groups (workload 4) and a channel (workload 8) ran on Relay and the peers, to every member.
    for (const id of ["relay-workerd", "ws-memory", "ws-sqlite"]) {
      for (const workload of ["group fan-out", "channel post"]) {
        const r = rows.find((x) => x.peer === id && x.workload === workload);
        expect(r?.status, `${id} ${workload}`).toBe("ok");
        expect(Number.isFinite(r?.latency_ms.p99), `${id} ${workload} p99`).toBe(true);
      }
    }

    const md = readFileSync(join(out, jsonFile!.replace(/\.json$/, ".md")), "utf8");
    expect(md).toContain("Relay ÷ peer");
    for (const chart of ["throughput-vs-offered.svg", "p99-vs-offered.svg", "latency-distribution.svg"]) {
      const file = join(out, "charts", chart);
      expect(existsSync(file), chart).toBe(true);
      expect(readFileSync(file, "utf8")).toMatch(/^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"[\s\S]*<\/svg>\n$/);
    }
  }, 270_000);

  it("runs the bare per-user inbox peer: 1:1 messages delivered, a backlog complete and in order", () => {
    const bareOut = join(out, "inbox-do");
    const run = spawnSync(process.execPath, ["bench/run.mjs", "--smoke", "--targets", "inbox-do", "--workloads", "1,3", "--out", bareOut], {
      cwd: ROOT,
      encoding: "utf8",
      timeout: 140_000,
      env: { ...process.env, ...OFFLINE },
    });
    expect(run.status, `${run.stdout}\n${run.stderr}`).toBe(0);
    const jsonFile = readdirSync(bareOut).find((f) => f.endsWith(".json"));
    const result = JSON.parse(readFileSync(join(bareOut, jsonFile!), "utf8"));
    expect(result.targets["inbox-do"]?.status).toBe("ok");
    const rows: Row[] = result.rows.filter((r: Row) => r.peer === "inbox-do");
    // Every message of every 1:1 step reached its recipient once and was acknowledged to its sender.
    const throughput = rows.filter((r) => r.workload === "1:1 throughput");
    expect(throughput.length).toBeGreaterThan(0);
    for (const r of throughput) {
      const d = r.details!;
      expect(d.scheduled, JSON.stringify(r)).toBeGreaterThan(0);
      expect([d.delivered, d.acked, d.failed, d.duplicates], JSON.stringify(r)).toEqual([d.scheduled, d.scheduled, 0, 0]);
    }
    // The backlog row is ok only when every message arrived once, in order, and none was left stored after the acks.
    const backlog = rows.find((r) => r.workload === "backlog drain");
    expect(backlog?.status, JSON.stringify(backlog)).toBe("ok");
  }, 170_000);
});
