/**
 * A peer for the benchmark, written clean-room: the naive same-runtime baseline. One Durable Object per
 * room; every member's WebSocket is accepted by the room (hibernation API); a message is `put` into the
 * room's storage (awaited) and then broadcast to every other member and acknowledged to its sender.
 * This is the pattern of Cloudflare's chat demo: one object does storage and fan-out for everyone in it.
 *
 *   GET /room/<name>?since=<seq>   WebSocket; Authorization: Bearer <token> (Ed25519, see ws-relay.mjs)
 *     since ≥ 0: first sends every stored message after `since` (a member catching up), in pages of 250.
 *   client → room  {"type":"send","id","body"}   {"type":"ping"} (answered without waking the object)
 *   room → client  {"type":"ready","userId"}  {"type":"sent","id","seq","ts"}
 *                  {"type":"deliver","envelopes":[{"seq","from","id","ts","body"}]}
 * There are no per-member acknowledgements and nothing is ever deleted: the room is a log (as in the demo).
 */
/* global Response, WebSocketRequestResponsePair, WebSocketPair */
import { DurableObject } from "cloudflare:workers";
import { parseFrame, peerEdge } from "../workerd-edge.js";

const PAGE = 250;
const key = (seq) => `m:${String(seq).padStart(12, "0")}`;

export default peerEdge("ROOM", (path) => {
  const room = /^\/room\/([A-Za-z0-9_-]{1,64})$/.exec(path)?.[1];
  return room && { object: room };
});

export class Room extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair('{"type":"ping"}', '{"type":"pong"}'));
    ctx.blockConcurrencyWhile(async () => {
      const last = await ctx.storage.list({ prefix: "m:", reverse: true, limit: 1 });
      this.seq = last.size ? [...last.values()][0].seq : 0;
    });
  }

  async fetch(request) {
    const user = request.headers.get("x-user");
    const since = Number(new URL(request.url).searchParams.get("since") ?? "-1");
    const pair = new WebSocketPair();
    const ws = pair[1];
    this.ctx.acceptWebSocket(ws);
    ws.serializeAttachment({ user });
    ws.send(JSON.stringify({ type: "ready", userId: user }));
    if (since >= 0) {
      let start = key(since + 1);
      for (;;) {
        const page = await this.ctx.storage.list({ prefix: "m:", start, limit: PAGE });
        if (page.size === 0) break;
        const envelopes = [...page.values()];
        ws.send(JSON.stringify({ type: "deliver", envelopes }));
        if (page.size < PAGE) break;
        start = key(envelopes[envelopes.length - 1].seq + 1);
      }
    }
    return new Response(null, { status: 101, webSocket: pair[0] });
  }

  async webSocketMessage(ws, data) {
    const frame = parseFrame(ws, data);
    if (!frame) return;
    if (frame.type !== "send" || typeof frame.id !== "string" || typeof frame.body !== "string") return;
    const { user } = ws.deserializeAttachment();
    const envelope = { seq: ++this.seq, from: user, id: frame.id, ts: Date.now(), body: frame.body };
    await this.ctx.storage.put(key(envelope.seq), envelope);
    ws.send(JSON.stringify({ type: "sent", id: frame.id, seq: envelope.seq, ts: envelope.ts }));
    const deliver = JSON.stringify({ type: "deliver", envelopes: [envelope] });
    for (const other of this.ctx.getWebSockets()) {
      if (other !== ws) {
        try {
          other.send(deliver);
        } catch {
          // closing
        }
      }
    }
  }

  webSocketClose(ws, code) {
    try {
      ws.close(code === 1005 ? 1000 : code, "bye");
    } catch {
      // already closed
    }
  }
}
