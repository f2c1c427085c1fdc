/**
 * A peer for the benchmark, written clean-room: Relay's shape on the same runtime with nothing but the
 * store-then-ack path. One Durable Object per user holds that user's socket and inbox. A send goes from the
 * sender's object to the recipient's object by RPC; the recipient's object inserts it (one SQLite row), pushes it
 * when the recipient is online, and returns; the sender's object then acknowledges it. The recipient's `ack`
 * deletes its rows. It is the floor under Relay's 1:1 path: what per-user objects cost on this runtime before
 * any of Relay's own work (see bench/README.md for what it leaves out).
 *
 *   GET /connect   WebSocket; Authorization: Bearer <token> (Ed25519, as bench/peers/ws-relay.mjs)
 *   client → user object  {"type":"send","id","to":"<user>","body"}  {"type":"ack","upTo":seq}
 *                         {"type":"ping"} (answered without waking the object)
 *   user object → client  {"type":"ready","userId","pending"}  {"type":"sent","id","ts"}
 *                         {"type":"deliver","envelopes":[{"seq","from","id","ts","body"}]}
 *                         {"type":"error","id","code"} (a frame it does not take)
 * Flow control as Relay and the ws peers: pages of 250, at most 1,000 envelopes unacknowledged.
 * One device per user; the newest socket of a user is the one it delivers to.
 */
/* global Response, WebSocketRequestResponsePair, WebSocketPair */
import { DurableObject } from "cloudflare:workers";
import { parseFrame, peerEdge } from "../workerd-edge.js";

const PAGE = 250;
const WINDOW = 1_000;

export default peerEdge("USER", (path) => path === "/connect" && {});

export class User extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair('{"type":"ping"}', '{"type":"pong"}'));
    // AUTOINCREMENT: a sequence is never reused, even after every row was acknowledged and deleted.
    ctx.storage.sql.exec(
      "CREATE TABLE IF NOT EXISTS inbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, sender TEXT NOT NULL, id TEXT NOT NULL, ts INTEGER NOT NULL, body TEXT NOT NULL)",
    );
    /**
     * The socket delivered to, with what it was sent and acknowledged. In memory: an object woken from hibernation
     * takes its newest socket again and sends everything unacknowledged again (a bench run does not hibernate).
     */
    this.conn = null;
    this.stubs = new Map();
  }

  async fetch(request) {
    const user = request.headers.get("x-user");
    const pair = new WebSocketPair();
    const ws = pair[1];
    this.ctx.acceptWebSocket(ws);
    ws.serializeAttachment({ user });
    const { pending } = this.ctx.storage.sql.exec("SELECT COUNT(*) AS pending FROM inbox").one();
    ws.send(JSON.stringify({ type: "ready", userId: user, pending }));
    this.conn = this.connection(ws);
    this.pump(this.conn);
    return new Response(null, { status: 101, webSocket: pair[0] });
  }

  /** Delivery state for `ws`, starting after what is acknowledged (everything before the oldest stored row). */
  connection(ws) {
    const { oldest } = this.ctx.storage.sql.exec("SELECT MIN(seq) AS oldest FROM inbox").one();
    const acked = oldest === null ? this.lastSeq() : oldest - 1;
    return { ws, sent: acked, acked, caughtUp: false };
  }

  /** The socket to deliver to: after hibernation, the newest one still open, sent what it may lack. */
  current() {
    if (!this.conn) {
      const ws = this.ctx.getWebSockets().at(-1);
      if (ws) this.pump((this.conn = this.connection(ws)));
    }
    return this.conn;
  }

  async webSocketMessage(ws, data) {
    const frame = parseFrame(ws, data);
    if (!frame) return;
    if (frame.type === "ack" && Number.isSafeInteger(frame.upTo)) return this.acknowledge(ws, frame.upTo);
    if (frame.type !== "send" || typeof frame.id !== "string" || typeof frame.to !== "string" || typeof frame.body !== "string") {
      return ws.send(JSON.stringify({ type: "error", id: frame.id, code: "bad_request" }));
    }
    const { user } = ws.deserializeAttachment();
    try {
      const ts = await this.stub(frame.to).deliver(user, frame.id, frame.body);
      ws.send(`{"type":"sent","id":${JSON.stringify(frame.id)},"ts":${ts}}`);
    } catch {
      ws.send(JSON.stringify({ type: "error", id: frame.id, code: "unavailable" }));
    }
  }

  /** RPC from the sender's object: stores the message, pushes it when its recipient is online, returns its timestamp. */
  deliver(from, id, body) {
    const ts = Date.now();
    const { seq } = this.ctx.storage.sql.exec("INSERT INTO inbox (sender, id, ts, body) VALUES (?, ?, ?, ?) RETURNING seq", from, id, ts, body).one();
    const c = this.current();
    if (c) {
      if (c.caughtUp && seq === c.sent + 1 && seq - c.acked <= WINDOW) this.sendPage(c, [{ seq, from, id, ts, body }]);
      else this.pump(c);
    }
    return ts;
  }

  acknowledge(ws, upTo) {
    const c = this.current();
    if (!c || c.ws !== ws || upTo <= c.acked || upTo > c.sent) return;
    this.ctx.storage.sql.exec("DELETE FROM inbox WHERE seq <= ?", upTo);
    c.acked = upTo;
    if (!c.caughtUp) this.pump(c);
  }

  /** Sends stored envelopes past what the socket was sent while the window allows. */
  pump(c) {
    while (c.sent - c.acked < WINDOW) {
      const room = Math.min(PAGE, WINDOW - (c.sent - c.acked));
      const page = this.ctx.storage.sql
        .exec('SELECT seq, sender AS "from", id, ts, body FROM inbox WHERE seq > ? ORDER BY seq LIMIT ?', c.sent, room)
        .toArray();
      if (page.length > 0 && !this.sendPage(c, page)) return;
      if (page.length < room) {
        c.caughtUp = true;
        return;
      }
    }
    c.caughtUp = false;
  }

  /** Whether the page went out; a closing socket is dropped, and what it was not sent waits for the next connect. */
  sendPage(c, envelopes) {
    try {
      c.ws.send(JSON.stringify({ type: "deliver", envelopes }));
    } catch {
      if (this.conn === c) this.conn = null;
      return false;
    }
    c.sent = envelopes[envelopes.length - 1].seq;
    return true;
  }

  lastSeq() {
    return this.ctx.storage.sql.exec("SELECT seq FROM sqlite_sequence WHERE name = 'inbox'").toArray()[0]?.seq ?? 0;
  }

  stub(user) {
    let stub = this.stubs.get(user);
    if (!stub) this.stubs.set(user, (stub = this.env.USER.get(this.env.USER.idFromName(user))));
    return stub;
  }

  webSocketClose(ws, code) {
    if (this.conn?.ws === ws) this.conn = null;
    try {
      ws.close(code === 1005 ? 1000 : code, "bye");
    } catch {
      // already closed
    }
  }
}
