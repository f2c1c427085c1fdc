/**
 * `GET /v1/connect`: the device's WebSocket. The access token comes in `Authorization: Bearer <token>` or,
 * from browsers (which cannot set headers on a WebSocket), as the subprotocol `bearer.<token>` next to
 * `relay.v1`. The verified socket is handed to the user's UserDO.
 */
import { Hono } from "hono";
import { verifyAccessToken, type DeviceClaims } from "../auth/tokens";
import { CONNECT_HEADERS } from "../../durable-objects/user";
import { RelayError } from "../protocol/errors";
import { CLOSE_CODES, type ServerFrame } from "../protocol/frames";
import type { AppEnv } from "./app-types";

const BEARER_PROTOCOL = /(?:^|,)\s*bearer\.([A-Za-z0-9._-]+)\s*(?:,|$)/;

function tokenOf(request: Request): string | undefined {
  const header = /^Bearer ([A-Za-z0-9._-]+)$/i.exec(request.headers.get("authorization") ?? "");
  if (header) return header[1];
  return BEARER_PROTOCOL.exec(request.headers.get("sec-websocket-protocol") ?? "")?.[1];
}

/** Accepts the upgrade only to say why it is refused: browsers cannot read a refused upgrade's status. */
function refuse(request: Request, reason: string): Response {
  const pair = new WebSocketPair();
  const server = pair[1];
  server.accept();
  server.send(JSON.stringify({ type: "error", code: "unauthorized", message: reason } satisfies ServerFrame));
  server.close(CLOSE_CODES.unauthorized, reason);
  const headers = request.headers.get("sec-websocket-protocol") ? { "Sec-WebSocket-Protocol": "relay.v1" } : undefined;
  return new Response(null, { status: 101, webSocket: pair[0], headers });
}

export const connect = new Hono<AppEnv>().get("/", async (c) => {
  if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
    throw new RelayError(426, "bad_request", "GET /v1/connect expects a WebSocket upgrade");
  }
  const token = tokenOf(c.req.raw);
  if (!token) return refuse(c.req.raw, "missing bearer access token");
  let claims: DeviceClaims;
  try {
    claims = await verifyAccessToken(c.env.TOKEN_SIGNING_KEY, token);
  } catch (error) {
    if (error instanceof RelayError && error.status === 401) return refuse(c.req.raw, error.message);
    throw error;
  }
  const headers = new Headers({ upgrade: "websocket" });
  const protocol = c.req.header("sec-websocket-protocol");
  if (protocol) headers.set("sec-websocket-protocol", protocol);
  headers.set(CONNECT_HEADERS.user, claims.userId);
  headers.set(CONNECT_HEADERS.device, String(claims.deviceId));
  headers.set(CONNECT_HEADERS.family, claims.family);
  const stub = c.env.USER.get(c.env.USER.idFromName(claims.userId));
  return stub.fetch(new Request(c.req.url, { headers }));
});
