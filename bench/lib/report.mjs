/**
 * The bench's outputs: the JSON result, a Markdown report (settings, a Relay ÷ peer table per workload, every
 * row) and SVG charts drawn by hand (no chart dependency): throughput vs offered load, p99 vs offered load,
 * and the latency distribution (HDR percentile curve) at the same offered load for every target.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";

const ORDER = ["relay-workerd", "relay-wrangler-dev", "ws-memory", "ws-sqlite", "room-do", "ejabberd", "inbox-do"];
const SHORT = {
  "relay-workerd": "Relay (workerd)",
  "relay-wrangler-dev": "Relay (wrangler dev)",
  "ws-memory": "ws, memory",
  "ws-sqlite": "ws + SQLite",
  "room-do": "room DO",
  ejabberd: "ejabberd",
  "inbox-do": "bare inboxes",
};
const COLORS = {
  "relay-workerd": "#d9480f",
  "relay-wrangler-dev": "#f08c00",
  "ws-memory": "#1c7ed6",
  "ws-sqlite": "#0ca678",
  "room-do": "#7048e8",
  ejabberd: "#868e96",
  "inbox-do": "#5c940d",
};

/** A number for people: thousands separated, 3 significant digits below 100. */
export function fmt(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return "—";
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a >= 100) return Math.round(v).toLocaleString("en-US");
  if (a >= 10) return v.toFixed(1).replace(/\.0$/, "");
  if (a >= 1) return v.toFixed(2).replace(/\.?0+$/, "");
  if (a === 0) return "0";
  return v.toPrecision(2);
}

function ratio(relay, peer) {
  if (relay === null || relay === undefined || peer === null || peer === undefined || peer === 0 || !Number.isFinite(relay) || !Number.isFinite(peer)) return null;
  return relay / peer;
}

// ───────────────────────────── Markdown ─────────────────────────────

/** The headline metrics: [label, better ("higher"|"lower"), value(rows, peer)]. */
function metrics(result) {
  const rows = result.rows;
  const find = (peer, wid, pred = () => true) => rows.find((r) => r.peer === peer && r.workload_id === wid && pred(r));
  const out = [];
  out.push(["1 · highest sustained 1:1 rate (msg/s, p99 < 100 ms)", "higher", (p) => okNum(find(p, "1max"), (r) => r.throughput)]);
  const fractions = [...new Set(rows.filter((r) => r.workload_id === "2").map((r) => r.params.fraction))].sort();
  for (const f of fractions) {
    const rate = rows.find((r) => r.workload_id === "2" && r.params.fraction === f && r.peer === "relay-workerd")?.params.offered_per_s;
    const at = rate ? `${fmt(rate)} msg/s` : `${f * 100} %`;
    out.push([`2 · p50 delivery at ${at} (ms)`, "lower", (p) => okNum(find(p, "2", (r) => r.params.fraction === f), (r) => r.latency_ms.p50)]);
    out.push([`2 · p99 delivery at ${at} (ms)`, "lower", (p) => okNum(find(p, "2", (r) => r.params.fraction === f), (r) => r.latency_ms.p99)]);
  }
  const sizes = [...new Set(rows.filter((r) => r.workload_id === "3").map((r) => r.params.messages))].sort((a, b) => a - b);
  for (const n of sizes) out.push([`3 · drain ${fmt(n)} queued (ms, all received and acked)`, "lower", (p) => okNum(find(p, "3", (r) => r.params.messages === n), (r) => r.drain_ms)]);
  const members = [...new Set(rows.filter((r) => r.workload_id === "4" && typeof r.params.members === "number").map((r) => r.params.members))].sort((a, b) => a - b);
  const w4 = (n, measure) => (p) => {
    const any = find(p, "4");
    // A target that ran no group of this size (skipped, or failed as a whole) shows its one row's status.
    const sized = find(p, "4", (x) => x.params.members === n && (x.params.measure ?? "message") === measure);
    return sized ?? (any && any.status !== "ok" && any.params.members === undefined ? any : undefined);
  };
  for (const n of members) {
    out.push([`4 · fan-out to ${fmt(n)}: p50 sender ack (ms)`, "lower", (p) => okNum(w4(n, "message")(p), (x) => x.sender_ack_ms?.p50)]);
    out.push([`4 · fan-out to ${fmt(n)}: p50 to last member, message in hand (ms)`, "lower", (p) => okNum(w4(n, "message")(p), (x) => x.latency_ms.p50)]);
    out.push([`4 · fan-out to ${fmt(n)}: p99 to last member, message in hand (ms)`, "lower", (p) => okNum(w4(n, "message")(p), (x) => x.latency_ms.p99)]);
    out.push([`4 · fan-out to ${fmt(n)}: p99 to last member's notice (Relay, read by cursor) (ms)`, "lower", (p) => okNum(find(p, "4", (x) => x.params.members === n && x.params.measure === "notice"), (x) => x.latency_ms.p99)]);
  }
  for (const r of rows.filter((x) => x.workload_id === "8" && x.peer === "relay-workerd" && x.status === "ok").slice(0, 1)) {
    const label = `post to ${fmt(r.params.subscribers)} subscribers, ${fmt(r.params.online)} online`;
    const w8 = (p) => find(p, "8");
    out.push([`8 · channel ${label}: p50 to last online subscriber (ms; Relay: notice)`, "lower", (p) => okNum(w8(p), (x) => x.latency_ms.p50)]);
    out.push([`8 · channel ${label}: p99 to last online subscriber (ms; Relay: notice)`, "lower", (p) => okNum(w8(p), (x) => x.latency_ms.p99)]);
    out.push(["8 · channel: p50 admin's ack per post (ms)", "lower", (p) => okNum(w8(p), (x) => x.sender_ack_ms?.p50)]);
    out.push(["8 · channel: rows stored per post", "lower", (p) => okNum(w8(p), (x) => x.rows_per_post)]);
    out.push(["8 · channel: bytes on disk per post", "lower", (p) => okNum(w8(p), (x) => x.bytes_per_post)]);
  }
  out.push(["5 · idle sockets held", "higher", (p) => okNum(find(p, "5"), (r) => r.throughput)]);
  out.push(["5 · server bytes per idle socket", "lower", (p) => okNum(find(p, "5"), (r) => r.bytes_per_conn)]);
  out.push(["5 · server fds per idle socket", "lower", (p) => okNum(find(p, "5"), (r) => r.fds_per_conn)]);
  out.push(["6 · reconnect storm (connects/s, token verified)", "higher", (p) => okNum(find(p, "6"), (r) => r.throughput)]);
  return out;
}

function okNum(r, pick) {
  if (!r) return null;
  if (r.status === "not-implemented") return "not yet implemented";
  if (r.status === "skipped") return "skipped";
  if (r.status === "error") return "error";
  const v = pick(r);
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

function cell(v, relay, isRelay) {
  if (typeof v === "string") return v;
  if (v === null) return "—";
  if (isRelay || typeof relay !== "number") return fmt(v);
  const r = ratio(relay, v);
  return r === null ? fmt(v) : `${fmt(v)} (×${fmt(r)})`;
}

/** "other / steal" of a row, flagged when together above 10 % of a core. */
function disturbance(r) {
  if (r.other_cpu === undefined || r.other_cpu === null) return "—";
  const flag = r.other_cpu + (r.steal_cpu ?? 0) > 10 ? " ⚠" : "";
  return `${fmt(r.other_cpu)} / ${fmt(r.steal_cpu ?? 0)}${flag}`;
}

/** A row's collections: "14 (9.1) / 1 (68)". */
function gcCell(gc) {
  if (!gc) return "—";
  const kind = (n, max) => `${n}${n ? ` (${fmt(max)})` : ""}`;
  return `${kind(gc.young, gc.young_max_ms)} / ${kind(gc.full, gc.full_max_ms)}`;
}

export function markdown(result, chartsRel) {
  const peers = ORDER.filter((p) => result.targets[p]);
  const m = result.machine;
  const s = result.settings;
  const lines = [];
  lines.push(`# Relay bench: ${result.mode} run, ${result.startedAt}`);
  lines.push("");
  lines.push(`- **Command:** \`${result.command.npm ?? result.command.argv}\` (${result.durationS} s)`);
  lines.push(`- **Machine:** ${m.cores} cores (${m.cpuModel}), ${m.memoryGb} GiB, Linux ${m.kernel}, open files ${m.openFilesLimit}; Node ${m.node}, wrangler ${m.wrangler}, workerd ${m.workerd}, ws ${m.ws}, @xmpp/client ${m.xmppClient}${m.ejabberd ? `, ejabberd ${m.ejabberd}` : ""}`);
  lines.push(`- **Settings** (../shared/RUNTIME-NOTES.md): local observability **off**; dev proxy **skipped** for Relay (workerd) and the workerd peers (load sent to the user worker's own URL), **in the path** for Relay (wrangler dev); pinning: ${s.pinning}; storage: **${s.storage}**.`);
  lines.push("");
  lines.push("## Relay ÷ peer");
  lines.push("");
  lines.push("Each cell: the target's figure, and in brackets Relay (workerd)'s figure divided by it. For rates, above 1 means Relay is ahead; for milliseconds, bytes and fds, below 1 means Relay is ahead.");
  lines.push("Workload 2 offers every target the same rates: 25/50/75 % of Relay (workerd)'s highest sustained rate from workload 1.");
  lines.push("");
  lines.push(`| metric | ${peers.map((p) => SHORT[p]).join(" | ")} |`);
  lines.push(`|---|${peers.map(() => "---:").join("|")}|`);
  for (const [label, , value] of metrics(result)) {
    const relay = value("relay-workerd");
    const cells = peers.map((p) => {
      if (result.targets[p].status === "skipped") return "skipped";
      return cell(value(p), relay, p === "relay-workerd");
    });
    if (cells.every((c) => c === "—" || c === "skipped")) continue;
    lines.push(`| ${label} | ${cells.join(" | ")} |`);
  }
  lines.push("");
  lines.push("## Targets");
  lines.push("");
  lines.push("| target | server (what carries the traffic) | status | seconds |");
  lines.push("|---|---|---|---:|");
  for (const p of peers) {
    const t = result.targets[p];
    lines.push(`| ${SHORT[p]} | ${t.server ?? "—"} | ${t.status}${t.note ? `: ${t.note.split("\n")[0]}` : ""} | ${t.seconds ?? "—"} |`);
  }
  if (result.relayRegistration) lines.push(`\nRelay users were registered through the public API at ${result.relayRegistration.perSecond}/s (${result.relayRegistration.users} users, via ${result.relayRegistration.via}); both Relay targets share that state directory and signing key${result.relayRegistration.restarted ? "; the server was restarted on that state before the workloads (see bench/README.md, \"The rig\")" : ""}.`);
  lines.push("");
  lines.push("## Every row");
  lines.push("");
  lines.push("CPU: percent of one core used by the serving processes over the row's window; RSS: their peak; fds: their peak count of open file descriptors. Other / steal: CPU that processes outside the bench used meanwhile, and time the hypervisor gave to other guests (percent of one core); above ~10 % together, the row was disturbed by something outside the bench (⚠).");
  const gcTraced = result.rows.some((r) => r.gc);
  if (gcTraced) {
    lines.push("");
    lines.push("GC (`--gc-trace`): the server's garbage collections that ended in the row's window, young (scavenges) and full (mark-compacts), with the longest pause of each kind in ms.");
  }
  lines.push("");
  lines.push(`| workload | target | params | throughput | p50 ms | p99 ms | p99.9 ms | CPU % | RSS MB | fds | other / steal % |${gcTraced ? " GC young / full (max ms) |" : ""} status |`);
  lines.push(`|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|${gcTraced ? "---:|" : ""}---|`);
  for (const r of result.rows) {
    const params = Object.entries(r.params)
      .filter(([k]) => !["reference", "criterion"].includes(k))
      .map(([k, v]) => `${k}=${typeof v === "number" ? fmt(v) : v}`)
      .join(", ");
    const extra =
      r.workload_id === "5"
        ? ` (${fmt(r.bytes_per_conn)} B, ${fmt(r.fds_per_conn)} fds /conn)`
        : r.workload_id === "1" && r.sustained === false
          ? " ✗"
          : (r.workload_id === "4" || r.workload_id === "8") && r.sender_ack_ms
            ? ` (sender ack p50 ${fmt(r.sender_ack_ms.p50)} p99 ${fmt(r.sender_ack_ms.p99)} ms${r.workload_id === "8" ? `; ${fmt(r.rows_per_post)} rows, ${fmt(r.bytes_per_post)} B per post` : ""})`
            : "";
    const status = r.status === "ok" ? "ok" : `${r.status}${r.note ? `: ${r.note}` : ""}${r.error ? `: ${r.error.split("\n")[0]}` : ""}`;
    lines.push(
      `| ${r.workload} | ${SHORT[r.peer] ?? r.peer} | ${params} | ${r.throughput === null ? "—" : `${fmt(r.throughput)} ${r.throughput_unit ?? ""}`}${extra} | ${fmt(r.latency_ms.p50)} | ${fmt(r.latency_ms.p99)} | ${fmt(r.latency_ms.p999)} | ${fmt(r.cpu)} | ${fmt(r.rss_mb)} | ${fmt(r.fds)} | ${disturbance(r)} |${gcTraced ? ` ${gcCell(r.gc)} |` : ""} ${status.replace(/\|/g, "\\|")} |`,
    );
  }
  if (result.notes.length) {
    lines.push("");
    lines.push("## Notes");
    lines.push("");
    for (const n of result.notes) lines.push(`- ${n}`);
  }
  if (chartsRel.length) {
    lines.push("");
    lines.push("## Charts");
    lines.push("");
    for (const c of chartsRel) lines.push(`![${c}](${c})`);
  }
  return lines.join("\n") + "\n";
}

// ───────────────────────────── SVG ─────────────────────────────

const esc = (s) => String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

function logTicks(min, max) {
  const ticks = [];
  for (let e = Math.floor(Math.log10(min)); e <= Math.ceil(Math.log10(max)); e++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e;
      if (v >= min * 0.999 && v <= max * 1.001) ticks.push(v);
    }
  }
  return ticks;
}

/**
 * A line chart: series [{ id, name, points: [[x, y, {hollow}]] }], log axes by default.
 * x/y transforms map values to [0, 1]; ticks are [value, label].
 */
function lineChart({ title, subtitle, xLabel, yLabel, series, xAxis, yAxis, hlines = [], diagonal = false }) {
  const W = 760;
  const H = 440;
  const M = { l: 70, r: 190, t: 56, b: 52 };
  const pw = W - M.l - M.r;
  const ph = H - M.t - M.b;
  const X = (v) => M.l + xAxis.map(v) * pw;
  const Y = (v) => M.t + ph - yAxis.map(v) * ph;
  const out = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" font-family="system-ui, -apple-system, Segoe UI, sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="#fff"/>`);
  out.push(`<text x="${M.l}" y="24" font-size="16" font-weight="600">${esc(title)}</text>`);
  if (subtitle) out.push(`<text x="${M.l}" y="42" fill="#555">${esc(subtitle)}</text>`);
  for (const [v, label] of xAxis.ticks) {
    out.push(`<line x1="${X(v)}" y1="${M.t}" x2="${X(v)}" y2="${M.t + ph}" stroke="#eee"/>`);
    out.push(`<text x="${X(v)}" y="${M.t + ph + 16}" text-anchor="middle" fill="#333">${esc(label)}</text>`);
  }
  for (const [v, label] of yAxis.ticks) {
    out.push(`<line x1="${M.l}" y1="${Y(v)}" x2="${M.l + pw}" y2="${Y(v)}" stroke="#eee"/>`);
    out.push(`<text x="${M.l - 6}" y="${Y(v) + 4}" text-anchor="end" fill="#333">${esc(label)}</text>`);
  }
  out.push(`<rect x="${M.l}" y="${M.t}" width="${pw}" height="${ph}" fill="none" stroke="#999"/>`);
  out.push(`<text x="${M.l + pw / 2}" y="${H - 12}" text-anchor="middle" fill="#333">${esc(xLabel)}</text>`);
  out.push(`<text transform="translate(16 ${M.t + ph / 2}) rotate(-90)" text-anchor="middle" fill="#333">${esc(yLabel)}</text>`);
  if (diagonal) {
    const lo = Math.max(xAxis.min, yAxis.min);
    const hi = Math.min(xAxis.max, yAxis.max);
    out.push(`<line x1="${X(lo)}" y1="${Y(lo)}" x2="${X(hi)}" y2="${Y(hi)}" stroke="#bbb" stroke-dasharray="4 4"/>`);
    out.push(`<text x="${X(hi) - 4}" y="${Y(hi) + 14}" text-anchor="end" fill="#999">delivered = offered</text>`);
  }
  for (const h of hlines) {
    if (h.y < yAxis.min || h.y > yAxis.max) continue;
    out.push(`<line x1="${M.l}" y1="${Y(h.y)}" x2="${M.l + pw}" y2="${Y(h.y)}" stroke="#c92a2a" stroke-dasharray="6 3"/>`);
    out.push(`<text x="${M.l + pw - 4}" y="${Y(h.y) - 4}" text-anchor="end" fill="#c92a2a">${esc(h.label)}</text>`);
  }
  const clampX = (v) => Math.min(Math.max(v, xAxis.min), xAxis.max);
  const clampY = (v) => Math.min(Math.max(v, yAxis.min), yAxis.max);
  series.forEach((s, i) => {
    const color = COLORS[s.id] ?? "#333";
    const pts = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
    if (pts.length) {
      out.push(`<polyline fill="none" stroke="${color}" stroke-width="2"${s.dash ? ' stroke-dasharray="6 4"' : ""} points="${pts.map(([x, y]) => `${X(clampX(x)).toFixed(1)},${Y(clampY(y)).toFixed(1)}`).join(" ")}"/>`);
      for (const [x, y, o] of pts) {
        out.push(`<circle cx="${X(clampX(x)).toFixed(1)}" cy="${Y(clampY(y)).toFixed(1)}" r="3.5" fill="${o?.hollow ? "#fff" : color}" stroke="${color}" stroke-width="1.5"/>`);
      }
    }
    const ly = M.t + 10 + i * 20;
    out.push(`<line x1="${M.l + pw + 14}" y1="${ly}" x2="${M.l + pw + 34}" y2="${ly}" stroke="${color}" stroke-width="2"${s.dash ? ' stroke-dasharray="6 4"' : ""}/>`);
    out.push(`<text x="${M.l + pw + 40}" y="${ly + 4}">${esc(s.name)}</text>`);
  });
  out.push(`</svg>`);
  return out.join("\n") + "\n";
}

function logAxis(values, { pad = 1.3, fmtTick = fmt, floor = 0.01 } = {}) {
  const finite = values.filter((v) => Number.isFinite(v) && v > 0);
  let min = finite.length ? Math.min(...finite) / pad : 1;
  let max = finite.length ? Math.max(...finite) * pad : 10;
  min = Math.max(min, floor);
  if (max / min < 10) max = min * 10;
  const lmin = Math.log10(min);
  const lmax = Math.log10(max);
  let ticks = logTicks(min, max);
  const mantissa = (v) => Math.round(v / 10 ** Math.floor(Math.log10(v) + 1e-9));
  if (ticks.length > 10) ticks = ticks.filter((v) => mantissa(v) !== 2);
  if (ticks.length > 10) ticks = ticks.filter((v) => mantissa(v) === 1);
  return { min, max, map: (v) => (Math.log10(v) - lmin) / (lmax - lmin), ticks: ticks.map((v) => [v, fmtTick(v)]) };
}

export function charts(result) {
  const rows = result.rows;
  const targets = ORDER.filter((p) => rows.some((r) => r.peer === p && r.workload_id === "1" && r.status === "ok"));
  const s = result.settings;
  const sub = `${result.mode} run ${result.startedAt.slice(0, 16).replace("T", " ")}Z · ${result.machine.cores} cores · observability off · ${s.storage.split(/[ :]/)[0]} · ${s.pinning.startsWith("none") ? "no pinning" : "server core 0, load core 1"}`;
  const out = {};
  const ladder = (p) => rows.filter((r) => r.peer === p && r.workload_id === "1" && r.status === "ok").sort((a, b) => a.params.offered_per_s - b.params.offered_per_s);
  if (targets.length) {
    const offered = targets.flatMap((p) => ladder(p).map((r) => r.params.offered_per_s));
    const achieved = targets.flatMap((p) => ladder(p).map((r) => r.throughput));
    const xAxis = logAxis(offered, { pad: 1.15, floor: 1 });
    const yAxis = logAxis([...achieved, ...offered], { pad: 1.15, floor: 1 });
    out["throughput-vs-offered.svg"] = lineChart({
      title: "1:1 durable messages: delivered vs offered rate",
      subtitle: sub,
      xLabel: "offered rate (msg/s, open loop)",
      yLabel: "delivered rate (msg/s)",
      xAxis,
      yAxis,
      diagonal: true,
      series: targets.map((p) => ({ id: p, name: SHORT[p], points: ladder(p).map((r) => [r.params.offered_per_s, r.throughput, { hollow: !r.sustained }]) })),
    });
    const p99s = targets.flatMap((p) => ladder(p).map((r) => r.latency_ms.p99));
    out["p99-vs-offered.svg"] = lineChart({
      title: "1:1 durable messages: p99 delivery latency vs offered rate",
      subtitle: `${sub} · hollow: not sustained`,
      xLabel: "offered rate (msg/s, open loop)",
      yLabel: "p99 latency from scheduled send (ms)",
      xAxis,
      yAxis: logAxis([...p99s, 100], { pad: 1.5, floor: 0.1 }),
      hlines: [{ y: 100, label: "100 ms" }],
      series: targets.map((p) => ({ id: p, name: SHORT[p], points: ladder(p).map((r) => [r.params.offered_per_s, r.latency_ms.p99, { hollow: !r.sustained }]) })),
    });
  }
  const w2 = rows.filter((r) => r.workload_id === "2" && r.status === "ok" && r.details?.latency_curve?.length);
  const fractions = [...new Set(w2.map((r) => r.params.fraction))].sort();
  const fraction = fractions.includes(0.5) ? 0.5 : fractions[Math.floor(fractions.length / 2)];
  const dist = ORDER.map((p) => w2.find((r) => r.peer === p && r.params.fraction === fraction)).filter(Boolean);
  if (dist.length) {
    const P = [50, 90, 99, 99.9, 99.99];
    const px = (p) => -Math.log10(1 - p / 100);
    const xAxis = { min: 50, max: 99.99, map: (p) => (px(p) - px(50)) / (px(99.99) - px(50)), ticks: P.map((p) => [p, `${p}%`]) };
    const values = dist.flatMap((r) => r.details.latency_curve.filter(([p]) => p >= 50 && p <= 99.99).map(([, v]) => v));
    const rate = dist[0].params.offered_per_s;
    out["latency-distribution.svg"] = lineChart({
      title: `Delivery latency distribution at ${fmt(rate)} msg/s offered (every target)`,
      subtitle: `${sub} · ${fraction * 100} % of Relay's max`,
      xLabel: "percentile",
      yLabel: "latency from scheduled send (ms)",
      xAxis,
      yAxis: logAxis([...values, 100], { pad: 1.5, floor: 0.05 }),
      hlines: [{ y: 100, label: "100 ms" }],
      series: dist.map((r) => ({ id: r.peer, name: SHORT[r.peer], points: r.details.latency_curve.filter(([p]) => p >= 50 && p <= 99.99).map(([p, v]) => [p, v]) })),
    });
  }
  const w4 = rows.filter((r) => r.workload_id === "4" && r.status === "ok" && typeof r.params.members === "number" && Number.isFinite(r.latency_ms.p99));
  const w4targets = ORDER.filter((p) => w4.some((r) => r.peer === p));
  if (w4targets.length) {
    const series = [];
    for (const p of w4targets) {
      const pts = (measure) =>
        w4
          .filter((r) => r.peer === p && (r.params.measure ?? "message") === measure)
          .sort((a, b) => a.params.members - b.params.members)
          .map((r) => [r.params.members, r.latency_ms.p99, { hollow: measure === "notice" }]);
      series.push({ id: p, name: SHORT[p], points: pts("message") });
      const notice = pts("notice");
      if (notice.length) series.push({ id: p, name: `${SHORT[p]}, notice`, points: notice, dash: true });
    }
    const sizes = w4.map((r) => r.params.members);
    const values = w4.map((r) => r.latency_ms.p99);
    out["group-fanout.svg"] = lineChart({
      title: "Group fan-out: p99 from send to the last member",
      subtitle: `${sub} · all members online`,
      xLabel: "members (log scale)",
      yLabel: "p99 to the last member (ms)",
      xAxis: logAxis(sizes, { pad: 1.4, floor: 1 }),
      yAxis: logAxis([...values, 250], { pad: 1.5, floor: 0.1 }),
      hlines: [{ y: 250, label: "goal: 250 ms to the last of 1,000" }],
      series,
    });
  }
  return out;
}

/** Writes <stamp>.json and <stamp>.md to outDir, and the charts to chartsDir. */
export function writeReports(result, { outDir, chartsDir, stamp }) {
  mkdirSync(outDir, { recursive: true });
  mkdirSync(chartsDir, { recursive: true });
  const json = join(outDir, `${stamp}.json`);
  const md = join(outDir, `${stamp}.md`);
  const svgs = charts(result);
  const written = [];
  for (const [name, svg] of Object.entries(svgs)) {
    const file = join(chartsDir, name);
    writeFileSync(file, svg);
    written.push(file);
  }
  result.charts = written.map((f) => relative(outDir, f));
  writeFileSync(json, JSON.stringify(result, null, 2) + "\n");
  writeFileSync(md, markdown(result, result.charts));
  return { json, md, charts: written };
}
