#!/usr/bin/env node
/**
 * A load generator process of bench/run.mjs (several run at once, each from its own 127.0.0.x source
 * addresses). It speaks to one target at a time through an adapter: Relay's frames, the ws peers' frames,
 * the room Durable Object's frames (all JSON over WebSocket), or XMPP (@xmpp/client) for ejabberd.
 *
 * Commands arrive over IPC as { id, cmd, args } and are answered { id, ok, result | error }.
 * Latencies go into HdrHistograms (µs) and are sent back encoded; open-loop steps measure each message from
 * its *scheduled* send time, so a stalled generator or server cannot hide its own delay.
 */
/* global Buffer, performance, setImmediate, setInterval, clearInterval */
import { randomBytes } from "node:crypto";
import { Agent as HttpAgent, request as httpRequest } from "node:http";
import { parseArgs } from "node:util";
import WebSocket from "ws";
import { encode, newHistogram, recordMs } from "./stats.mjs";

const { values: flags } = parseArgs({ options: { index: { type: "string", default: "0" }, addrs: { type: "string", default: "127.0.0.1" } } });
const index = Number(flags.index);
const addrs = flags.addrs.split(",");
let addrTurn = 0;
const nextAddr = () => addrs[addrTurn++ % addrs.length];

/** A short text message's ciphertext: 96 random bytes, 128 base64 characters. */
const BODY = randomBytes(96).toString("base64");
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const epochNow = () => performance.timeOrigin + performance.now();

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    Promise.resolve(promise).finally(() => clearTimeout(timer)),
    new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms))),
  ]);
}

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

// ───────────────────────────── adapters ─────────────────────────────

/**
 * A target's wire format. connect() resolves once the server said the connection is authenticated and
 * ready; handlers: onDeliver(envelopes: {id, seq?, kind?}[], now), onSent(id), onError(id, code), onPong(now).
 */
function jsonAdapter(target) {
  const wsBase = target.baseUrl.replace(/^http/, "ws");
  const kind = target.kind;
  const ackFrames = kind !== "room"; // the room keeps a log: it has no per-member acknowledgement
  return {
    kind,
    sentAcks: true,
    seqs: true,
    /**
     * Send frame to a group (workloads 4 and 8), as prefix + id + suffix: Relay's `group_send` (a channel post
     * also needs a signature per id: see signedPost), a ws peer's send to a room, the room DO's send.
     */
    groupTemplate(group) {
      if (kind === "relay") return [`{"type":"group_send","id":"`, `","group":"${group.id}","epoch":${group.epoch},"body":"${BODY}"}`];
      if (kind === "ws") return [`{"type":"send","id":"`, `","room":"${group.room}","body":"${BODY}"}`];
      return [`{"type":"send","id":"`, `","body":"${BODY}"}`];
    },
    /** Send frame for a message to `to` (one recipient or, for groups, a member list), as prefix + id + suffix. */
    template(to) {
      if (kind === "relay") {
        return [
          `{"type":"send","id":"`,
          `","to":"${to.userId}","messages":[{"device":1,"registrationId":${to.registrationId},"type":2,"body":"${BODY}"}]}`,
        ];
      }
      if (kind === "ws") {
        const list = Array.isArray(to) ? JSON.stringify(to.map((m) => m.userId)) : JSON.stringify(to.userId);
        return [`{"type":"send","id":"`, `","to":${list},"body":"${BODY}"}`];
      }
      return [`{"type":"send","id":"`, `","body":"${BODY}"}`];
    },
    connect(identity, handlers, opts = {}, timeoutMs = 30_000) {
      let url = kind === "relay" ? `${wsBase}/v1/connect` : kind === "ws" ? `${wsBase}/connect` : `${wsBase}/room/${opts.room ?? identity.room}`;
      if (kind === "room" && opts.since !== undefined) url += `?since=${opts.since}`;
      const ws = new WebSocket(url, {
        headers: { authorization: `Bearer ${identity.token}` },
        perMessageDeflate: false,
        handshakeTimeout: timeoutMs,
        localAddress: nextAddr(),
      });
      const acks = lazyReceiptAcks((upTo) => ws.send(`{"type":"ack","upTo":${upTo}}`));
      const liveAcks = lazyLiveReceiptAcks((batches) => ws.send(JSON.stringify({ type: "receipts_ack", batches })));
      return withTimeout(
        new Promise((resolve, reject) => {
          ws.once("error", reject);
          ws.once("unexpected-response", (req, res) => {
            req.destroy();
            reject(new Error(`upgrade refused: HTTP ${res.statusCode}`));
          });
          ws.once("close", (code, reason) => reject(new Error(`closed before ready: ${code} ${reason}`)));
          ws.once("message", (data) => {
            const first = JSON.parse(data.toString());
            if (first.type !== "ready") return reject(new Error(`first frame ${data}`));
            ws.removeAllListeners("close");
            ws.removeAllListeners("error");
            ws.on("error", () => {});
            ws.on("message", (raw) => {
              const text = raw.toString();
              const now = performance.now();
              if (text === '{"type":"pong"}') return handlers.onPong?.(now);
              const frame = JSON.parse(text);
              if (frame.type === "deliver") {
                handlers.onDeliver?.(frame.envelopes, now);
                if (ackFrames) acks.stored(frame.envelopes);
              } else if (frame.type === "receipts") {
                if (ackFrames) liveAcks.stored(frame.batch);
              } else if (frame.type === "sent") handlers.onSent?.(frame.id, now, frame);
              else if (frame.type === "error") handlers.onError?.(frame.id, frame.code, frame);
              else if (frame.type === "group_notice") handlers.onNotice?.(frame, now);
              else if (frame.type === "post") handlers.onDeliver?.([{ id: frame.id, kind: "post" }], now);
              else if (frame.type === "stats") handlers.onStats?.(frame);
            });
            resolve({
              ready: first,
              token: identity.token,
              send: (text) => ws.send(text),
              ping: () => ws.send('{"type":"ping"}'),
              close: () =>
                new Promise((done) => {
                  if (ws.readyState === WebSocket.CLOSED) return done();
                  ws.once("close", done);
                  ws.close(1000, "done");
                  setTimeout(() => (ws.terminate(), done()), 5_000);
                }),
            });
          });
        }),
        timeoutMs,
        "connect",
      ).catch((error) => {
        ws.terminate();
        throw error;
      });
    },
  };
}

/**
 * Relay's acknowledgements as the SDK sends them (client/transport/acks.ts): a page holding a message at once,
 * pages of receipts only together after at most RECEIPT_ACK_DELAY_MS or RECEIPT_ACK_MAX_PENDING envelopes.
 */
const RECEIPT_ACK_DELAY_MS = 1_000;
const RECEIPT_ACK_MAX_PENDING = 250;
function lazyReceiptAcks(ack) {
  let pending = null;
  let count = 0;
  let timer = null;
  const flush = () => {
    clearTimeout(timer);
    timer = null;
    if (pending !== null) ack(pending);
    pending = null;
    count = 0;
  };
  return {
    stored(envelopes) {
      pending = envelopes[envelopes.length - 1].seq;
      count += envelopes.length;
      if (!envelopes.every((e) => e.kind === "receipt") || count >= RECEIPT_ACK_MAX_PENDING) flush();
      else timer ??= setTimeout(flush, RECEIPT_ACK_DELAY_MS);
    },
  };
}

/** Live receipts (`receipts` frames) acknowledged as the SDK does (client/transport/acks.ts): together, lazily. */
function lazyLiveReceiptAcks(ack) {
  let pending = [];
  let timer = null;
  const flush = () => {
    clearTimeout(timer);
    timer = null;
    if (pending.length > 0) ack(pending);
    pending = [];
  };
  return {
    stored(batch) {
      pending.push(batch);
      if (pending.length >= 256) flush();
      else timer ??= setTimeout(flush, RECEIPT_ACK_DELAY_MS);
    },
  };
}

/**
 * XMPP over TCP with @xmpp/client: messages of type chat; ejabberd routes them, or stores them when offline.
 * Groups (workload 4) are MUC rooms: `opts.room` joins one after connecting, and the room's reflection of the
 * sender's own groupchat message stands for the server's acknowledgement (it comes after the room took it).
 */
async function xmppAdapter(target) {
  const { client, xml } = await import("@xmpp/client");
  const roomJid = (room) => `${room}@${target.mucHost}`;
  return {
    kind: "xmpp",
    sentAcks: false, // XMPP has no per-message acknowledgement from the server (stream management aside)
    seqs: false,
    template(to) {
      return [`<message to='${to.user}@localhost' type='chat' id='`, `'><body>${BODY}</body></message>`];
    },
    groupTemplate(group) {
      return [`<message to='${roomJid(group.room)}' type='groupchat' id='`, `'><body>${BODY}</body></message>`];
    },
    async connect(identity, handlers, opts = {}, timeoutMs = 30_000) {
      // SASL PLAIN: the connection is plain TCP on loopback, where @xmpp/client would otherwise refuse PLAIN.
      const credentials = (authenticate) => authenticate({ username: identity.user, password: identity.password }, "PLAIN");
      // @xmpp's own 2 s limit on opening the stream is too short for a thousand logins at once.
      const x = client({ service: `xmpp://127.0.0.1:${target.port}`, domain: "localhost", credentials, resource: "b", timeout: timeoutMs });
      x.reconnect.stop();
      const addr = nextAddr();
      const original = x.socketParameters.bind(x);
      x.socketParameters = (service) => ({ ...original(service), localAddress: addr });
      x.on("error", () => {});
      const occupant = opts.room ? `${roomJid(opts.room)}/${identity.user}` : null;
      let joined;
      const inRoom = new Promise((resolve) => (joined = resolve));
      x.on("stanza", (stanza) => {
        if (stanza.is("presence") && stanza.attrs.from === occupant) return joined(stanza.attrs.type !== "error");
        if (!stanza.is("message") || !stanza.attrs.id) return;
        if (occupant && stanza.attrs.from === occupant) return handlers.onSent?.(stanza.attrs.id, performance.now(), {});
        handlers.onDeliver?.([{ id: stanza.attrs.id }], performance.now());
      });
      try {
        await withTimeout(x.start(), timeoutMs, "xmpp connect");
      } catch (error) {
        x.socket?.destroy();
        throw error;
      }
      if (opts.presence) await x.send(xml("presence"));
      if (occupant) {
        await x.send(xml("presence", { to: occupant }, xml("x", { xmlns: "http://jabber.org/protocol/muc" }, xml("history", { maxstanzas: "0" }))));
        if (!(await withTimeout(inRoom, timeoutMs, `join ${opts.room}`))) throw new Error(`${identity.user} could not join ${opts.room}`);
      }
      return {
        ready: { pending: undefined },
        send: (text) => x.write(text).catch(() => {}),
        /** A round trip to the server: every stanza sent before it has been handled. */
        barrier: () => x.iqCaller.request(xml("iq", { type: "get", to: "localhost" }, xml("ping", { xmlns: "urn:xmpp:ping" })), 60_000),
        close: () => withTimeout(x.stop(), 5_000, "xmpp stop").catch(() => x.socket?.destroy()),
      };
    },
  };
}

/**
 * The bytes a channel post's signature covers: `channelPostSignedBytes` of src/protocol/groups.ts, byte for
 * byte (the bench is plain JavaScript; the server refuses a post whose signature does not verify, so a drift
 * shows up as `invalid_signature` errors in workload 8's row).
 */
function channelPostSignedBytes(post, body) {
  const head = Buffer.from(`relay-channel-post\u0000${post.group}\u0000${post.from}\u0000${post.fromDevice}\u0000${post.id}\u0000`, "utf8");
  return Buffer.concat([head, body]);
}

/** Keep-alive HTTP for members reading a group's log (Relay's fan-out on read). */
const httpAgent = new HttpAgent({ keepAlive: true, maxSockets: 16 });
function getJson(url, token) {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { agent: httpAgent, headers: { authorization: `Bearer ${token}` }, localAddress: nextAddr() }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk) => (body += chunk));
      res.on("end", () => (res.statusCode === 200 ? resolve(JSON.parse(body)) : reject(new Error(`GET ${new URL(url).pathname}: HTTP ${res.statusCode} ${body.slice(0, 200)}`))));
      res.on("error", reject);
    });
    req.setTimeout(30_000, () => req.destroy(new Error("GET timed out")));
    req.on("error", reject);
    req.end();
  });
}

let adapter;
/** A prefix for every message id of the current target: Relay dedupes on (sender device, client id), so ids never repeat. */
let tag = "";

// ───────────────────────────── workloads ─────────────────────────────

let pairs = [];
let inflight = new Map();
let step = null;
let idle = [];
let idleStats = null;
let group = null;

function onPairDelivery(envelopes, now) {
  const s = step;
  for (const e of envelopes) {
    if (e.kind && e.kind !== "message") continue;
    const m = inflight.get(e.id);
    if (!s || !m || m.step !== s.index) {
      if (s) s.stray++;
      continue;
    }
    if (m.delivered) {
      s.duplicates++;
      continue;
    }
    m.delivered = true;
    recordMs(s.delivery, now - m.t);
    s.delivered++;
    s.lastDelivery = now;
    if (m.acked || !adapter.sentAcks) inflight.delete(e.id);
  }
  s?.maybeDone();
}

function onPairSent(id, now) {
  const s = step;
  const m = inflight.get(id);
  if (!s || !m || m.step !== s.index) return;
  m.acked = true;
  recordMs(s.ack, now - m.t);
  s.acked++;
  if (m.delivered) inflight.delete(id);
  s.maybeDone();
}

function onPairError(id, code) {
  const s = step;
  const m = inflight.get(id);
  if (!s || !m) return;
  s.errors[code] = (s.errors[code] ?? 0) + 1;
  inflight.delete(id);
  s.failed++;
  s.maybeDone();
}

const commands = {
  async setup({ target }) {
    tag = target.tag ?? "";
    adapter = target.kind === "xmpp" ? await xmppAdapter(target) : jsonAdapter(target);
    return { index, addrs };
  },

  /** Connects sender/recipient pairs (each pair lives in this one process, so latency needs one clock). */
  async pairsConnect({ list }) {
    const handlers = { onDeliver: onPairDelivery, onSent: onPairSent, onError: onPairError };
    // Setup, not measurement: a connect that fails is tried again (twice) before the workload gives up.
    const connect = async (identity, room) => {
      for (let attempt = 0; ; attempt++) {
        try {
          return await adapter.connect(identity, handlers, { room, presence: true }, 15_000);
        } catch (error) {
          if (attempt === 2) throw error;
          await sleep(500);
        }
      }
    };
    pairs = await pool(list, 20, async (p) => {
      const sender = await connect(p.sender, p.room);
      const recipient = await connect(p.recipient, p.room);
      const [prefix, suffix] = adapter.template(p.recipient);
      return { sender, recipient, prefix, suffix };
    });
    return { pairs: pairs.length };
  },

  /** One open-loop step: `rate` msg/s from this process for `durationMs`, then up to `drainMs` for stragglers. */
  async step({ stepIndex, rate, durationMs, drainMs }) {
    const total = Math.max(1, Math.round((rate * durationMs) / 1000));
    const interval = 1000 / rate;
    inflight = new Map();
    let resolveDone;
    const done = new Promise((resolve) => (resolveDone = resolve));
    const s = (step = {
      index: stepIndex,
      delivery: newHistogram(),
      ack: newHistogram(),
      lag: newHistogram(),
      delivered: 0,
      acked: 0,
      failed: 0,
      duplicates: 0,
      stray: 0,
      errors: {},
      lastDelivery: 0,
      scheduledAll: false,
      maybeDone() {
        if (this.scheduledAll && this.delivered + this.failed >= total && (!adapter.sentAcks || this.acked + this.failed >= total)) resolveDone();
      },
    });
    const t0 = performance.now() + 20;
    let k = 0;
    await new Promise((resolve) => {
      const tick = () => {
        const now = performance.now();
        while (k < total && t0 + k * interval <= now) {
          const t = t0 + k * interval;
          const pair = pairs[k % pairs.length];
          const id = `${tag}w${index}s${stepIndex}m${k}`;
          inflight.set(id, { t, step: stepIndex, acked: false, delivered: false });
          recordMs(s.lag, now - t);
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
      errors: s.errors,
      spanMs: Math.max(sendEnd, s.lastDelivery) - t0,
      sendSpanMs: sendEnd - t0,
      delivery: encode(s.delivery),
      ack: encode(s.ack),
      lag: encode(s.lag),
    };
  },

  async pairsClose() {
    await Promise.all(pairs.flatMap((p) => [p.sender.close(), p.recipient.close()]));
    const n = pairs.length;
    pairs = [];
    return { closed: n * 2 };
  },

  /**
   * Workload 3: `count` messages queued for an offline recipient (each acknowledged as stored, or for XMPP
   * found in ejabberd's spool), then the time from connect until all are received (and acknowledged), with
   * checks for missing, duplicated and out-of-order envelopes.
   */
  async backlog({ sender, recipient, count, window, timeoutMs, room, spoolDb }) {
    const deadline = performance.now() + timeoutMs;
    const answers = new Map();
    let errors = 0;
    const s = await adapter.connect(sender, {
      onSent: (id) => (answers.get(id)?.(), answers.delete(id)),
      onError: (id) => (errors++, answers.get(id)?.(), answers.delete(id)),
    }, { room, presence: true });
    const [prefix, suffix] = adapter.template(recipient);
    const queueStart = performance.now();
    let nextId = 0;
    if (adapter.sentAcks) {
      await Promise.all(
        Array.from({ length: window }, async () => {
          while (nextId < count && performance.now() < deadline) {
            const id = `${tag}b${nextId++}`;
            const answer = new Promise((resolve) => answers.set(id, resolve));
            s.send(prefix + id + suffix);
            await withTimeout(answer, 60_000, `sent ${id}`);
          }
        }),
      );
    } else {
      while (nextId < count && performance.now() < deadline) {
        const end = Math.min(count, nextId + window);
        for (; nextId < end; nextId++) s.send(prefix + `${tag}b${nextId}` + suffix);
        await s.barrier();
      }
      const { DatabaseSync } = await import("node:sqlite");
      const db = new DatabaseSync(spoolDb, { readOnly: true });
      db.exec("PRAGMA busy_timeout = 5000");
      const stored = db.prepare("SELECT count(*) AS n FROM spool WHERE username = ?");
      while (stored.get(recipient.user).n < count && performance.now() < deadline) await sleep(20);
      db.close();
    }
    const queueMs = performance.now() - queueStart;
    if (nextId < count) throw new Error(`queued only ${nextId} of ${count} before the time limit`);

    const received = [];
    const sinceConnect = newHistogram();
    let finish;
    const all = new Promise((resolve) => (finish = resolve));
    const connectStart = performance.now();
    let firstAt = 0;
    const r = await adapter.connect(
      recipient,
      {
        onDeliver(envelopes, now) {
          if (!firstAt) firstAt = now;
          for (const e of envelopes) {
            if (e.kind && e.kind !== "message") continue;
            received.push({ seq: e.seq, id: e.id });
            recordMs(sinceConnect, now - connectStart);
          }
          if (received.length >= count) finish();
        },
      },
      { room, since: 0, presence: true },
      Math.max(1_000, deadline - performance.now()),
    );
    const readyMs = performance.now() - connectStart;
    await withTimeout(all, Math.max(1_000, deadline - performance.now()), `backlog drain (${received.length}/${count})`);
    const drainMs = performance.now() - connectStart;

    const ids = received.map((e) => e.id);
    const unique = new Set(ids);
    let outOfOrder = 0;
    for (let i = 1; i < received.length; i++) if (adapter.seqs && received[i].seq <= received[i - 1].seq) outOfOrder++;
    for (let i = 0; i < ids.length; i++) if (ids[i] !== `${tag}b${i}`) outOfOrder++;
    const missing = count - [...unique].filter((id) => id.startsWith(`${tag}b`) && /^\d+$/.test(id.slice(tag.length + 1)) && Number(id.slice(tag.length + 1)) < count).length;
    await sleep(100); // the last acknowledgement reaches the server
    await r.close();
    let pendingAfter = null;
    if (adapter.sentAcks && recipient.token && !room) {
      const again = await adapter.connect(recipient, {}, {});
      pendingAfter = again.ready.pending ?? null;
      await again.close();
    }
    await sleep(200);
    await s.close();
    return {
      count,
      queueMs,
      errors,
      pendingAtConnect: r.ready.pending ?? null,
      readyMs,
      firstPageMs: firstAt - connectStart,
      drainMs,
      received: received.length,
      duplicates: ids.length - unique.size,
      missing,
      outOfOrder,
      pendingAfter,
      sinceConnect: encode(sinceConnect),
    };
  },

  /** Workload 5: authenticated sockets held open, each heartbeating every `heartbeatMs` (random phase). */
  async idleConnect({ identities, heartbeatMs, concurrency = 50 }) {
    const started = performance.now();
    const failures = [];
    const connectHist = newHistogram();
    idleStats ??= { pong: newHistogram(), pings: 0, pongs: 0 };
    const opened = await pool(identities, concurrency, async (identity) => {
      const t = performance.now();
      const entry = { waiting: 0 };
      try {
        entry.conn = await adapter.connect(identity, {
          onPong(now) {
            if (entry.waiting) {
              recordMs(idleStats.pong, now - entry.waiting);
              idleStats.pongs++;
              entry.waiting = 0;
            }
          },
        });
        recordMs(connectHist, performance.now() - t);
        return entry;
      } catch (error) {
        failures.push(String(error?.message ?? error));
        return undefined;
      }
    });
    const fresh = opened.filter(Boolean);
    idle.push(...fresh);
    for (const entry of fresh) {
      const beat = () => {
        if (!entry.waiting) {
          entry.waiting = performance.now();
          idleStats.pings++;
          try {
            entry.conn.ping();
          } catch {
            // closed
          }
        }
      };
      entry.timer = setTimeout(() => {
        beat();
        entry.timer = setInterval(beat, heartbeatMs);
      }, Math.random() * heartbeatMs);
    }
    return { connected: fresh.length, failed: failures.length, firstFailure: failures[0], ms: performance.now() - started, connect: encode(connectHist) };
  },

  /** Starts the heartbeat statistics afresh (the hold window measures pings sent once every socket is open). */
  async idleMark() {
    if (idleStats) idleStats = { pong: newHistogram(), pings: 0, pongs: 0 };
    for (const entry of idle) entry.waiting = 0;
    return true;
  },

  async idleReport() {
    return { pings: idleStats?.pings ?? 0, pongs: idleStats?.pongs ?? 0, pong: idleStats ? encode(idleStats.pong) : null };
  },

  async idleClose() {
    for (const entry of idle) {
      clearTimeout(entry.timer);
      clearInterval(entry.timer);
    }
    await pool(idle, 500, (entry) => entry.conn.close());
    const n = idle.length;
    idle = [];
    idleStats = null;
    return { closed: n };
  },

  /** Workload 6: every identity connects at once (up to `concurrency` handshakes in flight) and authenticates. */
  async storm({ identities, concurrency }) {
    const hist = newHistogram();
    const failures = [];
    const started = performance.now();
    const conns = await pool(identities, concurrency, async (identity) => {
      const t = performance.now();
      try {
        const conn = await adapter.connect(identity, {});
        recordMs(hist, performance.now() - t);
        return conn;
      } catch (error) {
        failures.push(String(error?.message ?? error));
        return undefined;
      }
    });
    const ms = performance.now() - started;
    const open = conns.filter(Boolean);
    await pool(open, 500, (c) => c.close());
    return { connected: open.length, failed: failures.length, firstFailure: failures[0], ms, connect: encode(hist) };
  },

  /**
   * Workloads 4 and 8: group members (or channel subscribers) connect and record when each group message
   * reaches them (epoch ms): delivered on their socket (fan-out on write, the peers' pushes), or, for Relay's
   * fan-out-on-read groups, a `group_notice` and then (when `fetch`) the message: carried in the notice when small,
   * else read from the log by GET.
   * Resolves once every member is connected; `groupStatus` tells when they are ready (see memberReady).
   */
  async groupJoin({ identities, room, group: spec = {} }) {
    group = { spec, messages: new Map(), members: [], fetchErrors: [], duplicates: 0 };
    const g = group;
    const readMode = spec.mode === "read";
    const record = (m, id, at) => {
      if (m.seen.has(id)) return void g.duplicates++;
      m.seen.add(id);
      const seen = g.messages.get(id);
      if (seen) {
        seen.count++;
        seen.last = Math.max(seen.last, at);
      } else g.messages.set(id, { count: 1, last: at });
    };
    // XMPP logins (SASL, bind, session) are slower to set up than a WebSocket: fewer at once.
    g.members = await pool(identities, adapter.kind === "xmpp" ? 16 : 50, async (identity) => {
      // Ready: the peers at once; Relay once the group reached the member (its `created` event in the inbox,
      // or, read by cursor, the first notice and, when the member fetches, the first read of the log).
      const m = { identity, seen: new Set(), notices: [], cursor: 0, want: 0, fetching: false, ready: !spec.id };
      m.conn = await adapter.connect(
        identity,
        {
          onDeliver(envelopes) {
            const at = epochNow();
            for (const e of envelopes) {
              if (e.kind === "group_event") {
                if (e.group === spec.id && !readMode) m.ready = true;
                continue;
              }
              if (e.id && (!e.kind || e.kind === "group_message" || e.kind === "post" || e.kind === "message")) record(m, e.id, at);
            }
          },
          onNotice(frame) {
            if (frame.group !== spec.id) return;
            const at = epochNow();
            m.notices.push([frame.upTo, at]);
            // A small new entry rides inside the notice: like the SDK, use it when it follows the cursor.
            const carried = frame.entries;
            if (spec.fetch && carried?.length && !m.fetching && carried[0].groupSeq === m.cursor + 1) {
              for (const e of carried) if (e.kind === "group_message") record(m, e.id, at);
              m.cursor = carried.at(-1).groupSeq;
              m.ready = true;
            } else if (spec.fetch) void fetchLog(m, frame.upTo);
            else m.ready = true;
          },
        },
        { room, presence: true },
      );
      return m;
    });
    async function fetchLog(m, upTo) {
      m.want = Math.max(m.want, upTo);
      if (m.fetching) return;
      m.fetching = true;
      try {
        while (m.cursor < m.want) {
          const page = await getJson(`${spec.baseUrl}/v1/groups/${spec.id}/messages?after=${m.cursor}`, m.identity.token);
          const at = epochNow();
          for (const e of page.entries) if (e.kind === "group_message") record(m, e.id, at);
          const last = page.entries.at(-1)?.groupSeq;
          m.cursor = Math.max(m.cursor, last ?? page.head);
          if (last === undefined) break;
        }
      } catch (error) {
        if (g.fetchErrors.length < 5) g.fetchErrors.push(String(error?.message ?? error));
      } finally {
        m.fetching = false;
        m.ready = true;
      }
    }
    return { joined: g.members.length };
  },

  async groupStatus() {
    const members = group?.members ?? [];
    return { members: members.length, ready: members.filter((m) => m.ready).length, fetchErrors: group?.fetchErrors ?? [] };
  },

  /**
   * Sends `count` group messages at `rate`/s, each id carrying its scheduled epoch time (µs). `create` (ws
   * peers) sends the room's member list first; `sign` (Relay channels) signs each post with the admin
   * device's identity key. Resolves with the sender's ack latencies (scheduled send → `sent`), each
   * message's group sequence, and (ws peers) the server's stored rows before and after.
   */
  async groupSend({ sender, group: spec = {}, room, count, rate, idPrefix = "g", create, sign }) {
    let acked = 0;
    let failed = 0;
    const errors = {};
    const ackHist = newHistogram();
    const scheduled = new Map();
    const seqs = {};
    let all;
    const done = new Promise((resolve) => (all = resolve));
    let statsWaiter = null;
    const answers = new Map();
    const conn = await adapter.connect(
      sender,
      {
        onSent(id, now, frame) {
          if (answers.has(id)) return void (answers.get(id)(frame), answers.delete(id));
          const t = scheduled.get(id);
          if (t === undefined) return;
          scheduled.delete(id);
          recordMs(ackHist, now - t);
          seqs[id] = frame?.groupSeq ?? frame?.roomSeq ?? frame?.seq ?? null;
          if (++acked + failed >= count) all();
        },
        onError(id, code) {
          if (answers.has(id)) return void (answers.get(id)({ error: code }), answers.delete(id));
          if (!scheduled.delete(id)) return;
          errors[code] = (errors[code] ?? 0) + 1;
          if (acked + ++failed >= count) all();
        },
        onStats: (frame) => statsWaiter?.(frame),
      },
      { room },
    );
    const stats = async () => {
      if (adapter.kind !== "ws") return null;
      const answer = new Promise((resolve) => (statsWaiter = resolve));
      conn.send('{"type":"stats"}');
      return withTimeout(answer, 30_000, "stats");
    };
    if (create) {
      const answer = new Promise((resolve) => answers.set(`${tag}room`, resolve));
      conn.send(JSON.stringify({ type: "room", id: `${tag}room`, room: create.room, members: create.members, mode: create.mode }));
      const a = await withTimeout(answer, 30_000, "room created");
      if (a?.error) throw new Error(`room refused: ${a.error}`);
    }
    const statsBefore = await stats();
    const [prefix, suffix] = adapter.groupTemplate(spec);
    // Frames are built (and channel posts signed) before the schedule starts: the clock is not the signer's.
    const t0 = epochNow() + 100 + count * 0.5;
    const frames = [];
    let signer = null;
    if (sign) {
      const { PrivateKey } = await import("@signalapp/libsignal-client");
      signer = PrivateKey.deserialize(Buffer.from(sign.identityPrivate, "base64"));
    }
    const bodyBytes = Buffer.from(BODY, "base64");
    for (let k = 0; k < count; k++) {
      const at = t0 + (k * 1000) / rate;
      const id = `${tag}${idPrefix}${k}t${Math.round(at * 1000)}`;
      let text = prefix + id + suffix;
      if (signer) {
        const signed = channelPostSignedBytes({ group: spec.id, from: sign.userId, fromDevice: sign.deviceId, id }, bodyBytes);
        text = `${text.slice(0, -1)},"signature":"${Buffer.from(signer.sign(signed)).toString("base64")}"}`;
      }
      frames.push({ id, at, text });
    }
    const p0 = performance.now() + (t0 - epochNow());
    for (const [k, f] of frames.entries()) {
      const wait = p0 + (k * 1000) / rate - performance.now();
      if (wait > 0) await sleep(wait);
      scheduled.set(f.id, p0 + (k * 1000) / rate);
      conn.send(f.text);
    }
    await withTimeout(done, 60_000, "group sends acknowledged").catch(() => undefined);
    const statsAfter = await stats().catch(() => null);
    await conn.close();
    return { acked, failed, errors, ack: encode(ackHist), seqs, statsBefore, statsAfter };
  },

  /** Per message id: how many of this process's members have it, and were told of it (see groupCollect). */
  async groupProgress({ seqs = {} } = {}) {
    const out = {};
    for (const [id, seq] of Object.entries(seqs)) {
      const members = group?.members ?? [];
      out[id] = { message: group?.messages.get(id)?.count ?? 0, notice: seq ? members.filter((m) => m.notices.some(([upTo]) => upTo >= seq)).length : 0 };
    }
    return out;
  },

  /**
   * Per message id: how many members have it and when the last of them got it (epoch ms); with `seqs`
   * (id → group sequence), the same for notices (the first notice at or past the message's sequence).
   * Then the members disconnect.
   */
  async groupCollect({ seqs = {} } = {}) {
    const g = group;
    const messages = g ? Object.fromEntries(g.messages) : {};
    const notices = {};
    for (const [id, seq] of Object.entries(seqs)) {
      if (!seq) continue;
      let count = 0;
      let last = 0;
      for (const m of g?.members ?? []) {
        const hit = m.notices.find(([upTo]) => upTo >= seq);
        if (!hit) continue;
        count++;
        last = Math.max(last, hit[1]);
      }
      notices[id] = { count, last };
    }
    const out = { messages, notices, duplicates: g?.duplicates ?? 0, fetchErrors: g?.fetchErrors ?? [] };
    await pool(g?.members ?? [], 500, (m) => m.conn.close());
    group = null;
    return out;
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
