/**
 * The edge Worker of the workerd peers (room-do, inbox-do), and the frame parse their objects share; copied beside
 * each one's worker.js by bench/run.mjs.
 * Token: base64url(JSON {sub, exp}) "." base64url(Ed25519 signature), sent as `Authorization: Bearer <token>` on the
 * upgrade and checked once per connection, as bench/peers/ws-relay.mjs does with node:crypto.
 */
/* global atob, crypto, TextEncoder, TextDecoder, Headers, Request, Response */

let publicKey;

/** The user a request's token speaks for, or undefined when it is missing, forged, malformed or expired. */
async function userOf(request, env) {
  const token = /^Bearer (\S+)$/.exec(request.headers.get("authorization") ?? "")?.[1];
  if (!token) return undefined;
  const dot = token.indexOf(".");
  if (dot < 0) return undefined;
  const b64 = (s) => Uint8Array.from(atob(s.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
  try {
    publicKey ??= await crypto.subtle.importKey("raw", b64(env.PUBLIC_KEY), { name: "Ed25519" }, false, ["verify"]);
    const payload = token.slice(0, dot);
    const ok = await crypto.subtle.verify({ name: "Ed25519" }, publicKey, b64(token.slice(dot + 1)), new TextEncoder().encode(payload));
    if (!ok) return undefined;
    const claims = JSON.parse(new TextDecoder().decode(b64(payload)));
    return typeof claims.sub === "string" && claims.exp * 1000 > Date.now() ? claims.sub : undefined;
  } catch {
    return undefined;
  }
}

/**
 * `GET /health`, and WebSocket upgrades on the paths `route` takes: each is authenticated, then handed with the user
 * in `x-user` to the object of namespace `binding` that `route` names (`{ object }`), or to the user's own (`{}`).
 */
export function peerEdge(binding, route) {
  return {
    async fetch(request, env) {
      const url = new URL(request.url);
      if (url.pathname === "/health") return Response.json({ ok: true });
      const match = route(url.pathname);
      if (!match || request.headers.get("upgrade")?.toLowerCase() !== "websocket") return new Response("not found", { status: 404 });
      const user = await userOf(request, env);
      if (!user) return new Response("unauthorized", { status: 401 });
      const headers = new Headers(request.headers);
      headers.set("x-user", user);
      const namespace = env[binding];
      return namespace.get(namespace.idFromName(match.object ?? user)).fetch(new Request(request.url, { headers }));
    },
  };
}

/** A client frame as a JSON object, or undefined after answering `bad_request` (not JSON, or not an object). */
export function parseFrame(ws, data) {
  let frame;
  try {
    frame = JSON.parse(data);
  } catch {
    frame = undefined;
  }
  if (frame !== null && typeof frame === "object") return frame;
  ws.send('{"type":"error","code":"bad_request"}');
  return undefined;
}
