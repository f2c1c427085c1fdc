#!/usr/bin/env node
/**
 * A peer for the benchmark: a plain Node WebSocket relay (the `ws` library), the shape a user would write
 * instead of Relay. Same frames as Relay, minus the Signal envelope around them:
 *
 *   client → server  {"type":"send","id","to":"<user>"|["<user>",…],"body"}   {"type":"ack","upTo":seq}   {"type":"ping"}
 *                    {"type":"room","id","room","members":[…],"mode":"write"|"log"}   {"type":"send","id","room","body"}
 *                    {"type":"stats"}
 *   server → client  {"type":"ready","userId","pending"}  {"type":"sent","id","ts"[,"roomSeq"]}  {"type":"pong"}
 *                    {"type":"deliver","envelopes":[{"seq","from","id","ts","body"}]}
 *                    {"type":"post","room","roomSeq","from","id","ts","body"}   {"type":"stats","inboxRows","logRows"}
 *
 * Rooms (group fan-out, bench workloads 4 and 8): a `room` frame names a room's members (the sender is a
 * member: it creates or replaces the room). A send to a room in mode "write" is fanned out on write: one
 * inbox envelope per member but the sender, committed before `sent`, pushed and acknowledged like a 1:1
 * message. Mode "log" (a broadcast channel) stores the post once in the room's log, then pushes it whole
 * (a `post` frame, no acknowledgement) to the members that are online; the others would read the log later.
 *
 * Authentication: `Authorization: Bearer <token>` on the upgrade, token = base64url(JSON {sub, exp}) "."
 * base64url(Ed25519 signature), checked with node:crypto against the public key given in --public-key
 * (base64 of the raw 32 bytes), once per connection (as Relay checks its JWT once per connection).
 *
 * --store memory  inboxes in memory, no persistence: the loopback ceiling.
 * --store sqlite  inboxes in SQLite (node:sqlite, WAL, synchronous=FULL): every send is committed before the
 *                 sender gets `sent`, acknowledged envelopes are deleted. All frames of one event-loop turn
 *                 go into one transaction (group commit), then acks and pushes go out. The durable ceiling.
 *
 * One device per user, no dedupe of retried sends, no device lists, no receipts: each of these is work
 * Relay does and this peer does not (bench/README.md). Flow control as Relay: pages of 250, 1,000 unacked.
 *
 *   node bench/peers/ws-relay.mjs --store sqlite --db /dev/shm/x.db --public-key <b64> [--port 0]
 * Prints one JSON line {"ready":true,"port":N} on stdout once listening on 127.0.0.1.
 */
/* global Buffer, setImmediate */
import { createPublicKey, verify } from "node:crypto";
import { createServer } from "node:http";
import { parseArgs } from "node:util";
import { WebSocketServer } from "ws";

const { values: flags } = parseArgs({
  options: {
    store: { type: "string", default: "memory" },
    db: { type: "string" },
    port: { type: "string", default: "0" },
    "public-key": { type: "string" },
  },
});

const PAGE = 250;
const WINDOW = 1000;

// ───────────── tokens ─────────────
const publicKey = createPublicKey({
  key: { kty: "OKP", crv: "Ed25519", x: Buffer.from(flags["public-key"], "base64").toString("base64url") },
  format: "jwk",
});

/** The user a token speaks for, or undefined when it is forged, malformed or expired. */
function verifyToken(token) {
  const dot = token.indexOf(".");
  if (dot < 0) return undefined;
  const payload = token.slice(0, dot);
  try {
    if (!verify(null, Buffer.from(payload), publicKey, Buffer.from(token.slice(dot + 1), "base64url"))) return undefined;
    const claims = JSON.parse(Buffer.from(payload, "base64url").toString());
    if (typeof claims.sub !== "string" || !(claims.exp * 1000 > Date.now())) return undefined;
    return claims.sub;
  } catch {
    return undefined;
  }
}

// ───────────── stores ─────────────
/** Inboxes in memory: user → envelopes in seq order. */
function memoryStore() {
  const inboxes = new Map();
  const logs = new Map();
  const inbox = (user) => {
    let list = inboxes.get(user);
    if (!list) inboxes.set(user, (list = []));
    return list;
  };
  return {
    begin() {},
    commit() {},
    insert(user, env) {
      inbox(user).push(env);
    },
    ack(user, upTo) {
      const list = inbox(user);
      let n = 0;
      while (n < list.length && list[n].seq <= upTo) n++;
      if (n) list.splice(0, n);
    },
    after(user, seq, limit) {
      const list = inbox(user);
      let i = 0;
      while (i < list.length && list[i].seq <= seq) i++;
      return list.slice(i, i + limit);
    },
    pending(user) {
      const list = inbox(user);
      return { count: list.length, first: list[0]?.seq, last: list.at(-1)?.seq };
    },
    lastSeq: () => 0,
    appendLog(room, e) {
      let list = logs.get(room);
      if (!list) logs.set(room, (list = []));
      list.push(e);
    },
    stats: () => ({ inboxRows: [...inboxes.values()].reduce((n, l) => n + l.length, 0), logRows: [...logs.values()].reduce((n, l) => n + l.length, 0) }),
  };
}

/** Inboxes in SQLite: one row per envelope, deleted on ack. */
async function sqliteStore(path) {
  const { DatabaseSync } = await import("node:sqlite");
  const db = new DatabaseSync(path);
  db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;");
  db.exec(`CREATE TABLE IF NOT EXISTS inbox (
    user TEXT NOT NULL, seq INTEGER NOT NULL, sender TEXT NOT NULL, id TEXT NOT NULL, ts INTEGER NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (user, seq)) WITHOUT ROWID`);
  db.exec(`CREATE TABLE IF NOT EXISTS room_log (
    room TEXT NOT NULL, seq INTEGER NOT NULL, sender TEXT NOT NULL, id TEXT NOT NULL, ts INTEGER NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (room, seq)) WITHOUT ROWID`);
  const appendLog = db.prepare("INSERT INTO room_log (room, seq, sender, id, ts, body) VALUES (?, ?, ?, ?, ?, ?)");
  const countInbox = db.prepare("SELECT count(*) AS n FROM inbox");
  const countLog = db.prepare("SELECT count(*) AS n FROM room_log");
  const insert = db.prepare("INSERT INTO inbox (user, seq, sender, id, ts, body) VALUES (?, ?, ?, ?, ?, ?)");
  const del = db.prepare("DELETE FROM inbox WHERE user = ? AND seq <= ?");
  const after = db.prepare("SELECT seq, sender AS \"from\", id, ts, body FROM inbox WHERE user = ? AND seq > ? ORDER BY seq LIMIT ?");
  const pending = db.prepare("SELECT count(*) AS count, min(seq) AS first, max(seq) AS last FROM inbox WHERE user = ?");
  const last = db.prepare("SELECT max(seq) AS last FROM inbox WHERE user = ?");
  return {
    begin: () => db.exec("BEGIN"),
    commit: () => db.exec("COMMIT"),
    insert: (user, e) => insert.run(user, e.seq, e.from, e.id, e.ts, e.body),
    ack: (user, upTo) => del.run(user, upTo),
    after: (user, seq, limit) => after.all(user, seq, limit).map((row) => ({ ...row })),
    pending: (user) => {
      const row = pending.get(user);
      return { count: row.count, first: row.first ?? undefined, last: row.last ?? undefined };
    },
    lastSeq: (user) => last.get(user).last ?? 0,
    appendLog: (room, e) => appendLog.run(room, e.seq, e.from, e.id, e.ts, e.body),
    stats: () => ({ inboxRows: countInbox.get().n, logRows: countLog.get().n }),
  };
}

const store = flags.store === "sqlite" ? await sqliteStore(flags.db) : memoryStore();

// ───────────── connections and delivery ─────────────
/** user → { ws, sentUpTo, ackedUpTo, caughtUp } */
const conns = new Map();
const nextSeq = new Map();
/** room → { members: string[], mode: "write" | "log", seq } (in memory: the bench creates rooms per run). */
const rooms = new Map();

function allocSeq(user) {
  const seq = (nextSeq.get(user) ?? store.lastSeq(user)) + 1;
  nextSeq.set(user, seq);
  return seq;
}

function sendPage(c, envelopes) {
  c.ws.send(JSON.stringify({ type: "deliver", envelopes }));
  c.sentUpTo = envelopes[envelopes.length - 1].seq;
}

/** Sends stored envelopes past `sentUpTo` while the window allows. */
function pump(c) {
  while (c.sentUpTo - c.ackedUpTo < WINDOW) {
    const room = Math.min(PAGE, WINDOW - (c.sentUpTo - c.ackedUpTo));
    const page = store.after(c.user, c.sentUpTo, room);
    if (page.length === 0) {
      c.caughtUp = true;
      return;
    }
    sendPage(c, page);
    if (page.length < room) {
      c.caughtUp = true;
      return;
    }
  }
  c.caughtUp = false;
}

/** Pushes just-committed envelopes to an online recipient without reading them back, when it is caught up. */
function push(user, envelopes) {
  const c = conns.get(user);
  if (!c) return;
  if (c.caughtUp && envelopes[0].seq === c.sentUpTo + 1 && c.sentUpTo + envelopes.length - c.ackedUpTo <= WINDOW) {
    sendPage(c, envelopes);
  } else {
    pump(c);
  }
}

// ───────────── group commit ─────────────
let batch = [];
let scheduled = false;

function enqueue(op) {
  batch.push(op);
  if (!scheduled) {
    scheduled = true;
    setImmediate(flush);
  }
}

function flush() {
  scheduled = false;
  const ops = batch;
  batch = [];
  const pushes = new Map();
  const ts = Date.now();
  const posts = [];
  store.begin();
  try {
    for (const op of ops) {
      if (op.kind === "ack") {
        store.ack(op.user, op.upTo);
        continue;
      }
      if (op.kind === "post") {
        const room = rooms.get(op.room);
        const post = { seq: ++room.seq, from: op.from, id: op.id, ts, body: op.body };
        store.appendLog(op.room, post);
        op.roomSeq = post.seq;
        posts.push({ room, from: op.from, text: JSON.stringify({ type: "post", room: op.room, roomSeq: post.seq, from: op.from, id: op.id, ts, body: op.body }) });
        continue;
      }
      for (const to of op.to) {
        const env = { seq: allocSeq(to), from: op.from, id: op.id, ts, body: op.body };
        store.insert(to, env);
        let list = pushes.get(to);
        if (!list) pushes.set(to, (list = []));
        list.push(env);
      }
    }
    store.commit();
  } catch (error) {
    console.error(`commit failed: ${error}`);
    process.exit(1);
  }
  for (const op of ops) {
    if (op.kind === "send") op.ws.send(`{"type":"sent","id":${JSON.stringify(op.id)},"ts":${ts}}`);
    else if (op.kind === "post") op.ws.send(`{"type":"sent","id":${JSON.stringify(op.id)},"ts":${ts},"roomSeq":${op.roomSeq}}`);
    else {
      const c = conns.get(op.user);
      if (c && c.ws === op.ws) {
        c.ackedUpTo = Math.max(c.ackedUpTo, op.upTo);
        if (!c.caughtUp) pump(c);
      }
    }
  }
  for (const [to, envelopes] of pushes) push(to, envelopes);
  for (const { room, from, text } of posts) {
    for (const member of room.members) {
      const c = member !== from && conns.get(member);
      if (c) c.ws.send(text);
    }
  }
}

// ───────────── server ─────────────
const http = createServer((req, res) => {
  if (req.url === "/health") res.writeHead(200, { "content-type": "application/json" }).end('{"ok":true}');
  else res.writeHead(404).end();
});
const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 512 * 1024 });

http.on("upgrade", (req, socket, head) => {
  const token = /^Bearer (\S+)$/.exec(req.headers.authorization ?? "")?.[1];
  const user = req.url.startsWith("/connect") && token ? verifyToken(token) : undefined;
  if (!user) {
    socket.end("HTTP/1.1 401 Unauthorized\r\nconnection: close\r\ncontent-length: 0\r\n\r\n");
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws, user));
});

function onConnection(ws, user) {
  conns.get(user)?.ws.close(4409, "replaced by a newer connection");
  const p = store.pending(user);
  const c = { ws, user, sentUpTo: p.first !== undefined ? p.first - 1 : p.last ?? 0, ackedUpTo: 0, caughtUp: false };
  c.ackedUpTo = c.sentUpTo;
  conns.set(user, c);
  ws.send(JSON.stringify({ type: "ready", userId: user, pending: p.count }));
  pump(c);
  ws.on("message", (data, isBinary) => {
    if (isBinary) return ws.send('{"type":"error","code":"bad_request","message":"text frames only"}');
    const text = data.toString();
    if (text === '{"type":"ping"}') return ws.send('{"type":"pong"}');
    let frame;
    try {
      frame = JSON.parse(text);
    } catch {
      return ws.send('{"type":"error","code":"bad_request","message":"not JSON"}');
    }
    if (frame.type === "room" && typeof frame.id === "string" && typeof frame.room === "string" && Array.isArray(frame.members)) {
      const members = [...new Set([user, ...frame.members.filter((m) => typeof m === "string")])];
      rooms.set(frame.room, { members, set: new Set(members), mode: frame.mode === "log" ? "log" : "write", seq: rooms.get(frame.room)?.seq ?? 0 });
      ws.send(`{"type":"sent","id":${JSON.stringify(frame.id)},"ts":${Date.now()}}`);
    } else if (frame.type === "send" && typeof frame.id === "string" && typeof frame.body === "string" && typeof frame.room === "string") {
      const room = rooms.get(frame.room);
      if (!room || !room.set.has(user)) return ws.send(`{"type":"error","id":${JSON.stringify(frame.id)},"code":"not_found"}`);
      if (room.mode === "log") enqueue({ kind: "post", ws, from: user, id: frame.id, room: frame.room, body: frame.body });
      else enqueue({ kind: "send", ws, from: user, id: frame.id, to: room.members.filter((m) => m !== user), body: frame.body });
    } else if (frame.type === "stats") {
      ws.send(JSON.stringify({ type: "stats", ...store.stats() }));
    } else if (frame.type === "send" && typeof frame.id === "string" && typeof frame.body === "string") {
      const to = Array.isArray(frame.to) ? frame.to : [frame.to];
      if (!to.every((t) => typeof t === "string")) return ws.send(`{"type":"error","id":${JSON.stringify(frame.id)},"code":"bad_request"}`);
      enqueue({ kind: "send", ws, from: user, id: frame.id, to, body: frame.body });
    } else if (frame.type === "ack" && Number.isInteger(frame.upTo)) {
      enqueue({ kind: "ack", ws, user, upTo: frame.upTo });
    } else if (frame.type === "ping") {
      ws.send('{"type":"pong"}');
    } else {
      ws.send('{"type":"error","code":"bad_request","message":"unknown frame"}');
    }
  });
  ws.on("close", () => {
    if (conns.get(user)?.ws === ws) conns.delete(user);
  });
  ws.on("error", () => {});
}

http.listen(Number(flags.port), "127.0.0.1", () => {
  process.stdout.write(JSON.stringify({ ready: true, port: http.address().port, store: flags.store }) + "\n");
});
for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, () => process.exit(0));
