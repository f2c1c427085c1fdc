import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import { RelayError, type ErrorBody } from "../protocol/errors";

/** Renders any thrown error as `{"error":{"code","message"}}` with the right status and headers. */
export function renderError(error: Error, c: Context): Response {
  if (error instanceof RelayError) {
    const headers: Record<string, string> = {};
    if (error.extra.retryAfterMs !== undefined) headers["Retry-After"] = String(Math.ceil(error.extra.retryAfterMs / 1000));
    if (error.status === 401) {
      headers["WWW-Authenticate"] = `Bearer realm="relay", error="invalid_token", error_description="${error.message}"`;
    }
    return c.json(error.toBody(), error.status as 400, headers);
  }
  if (error instanceof HTTPException && error.status < 500) {
    const code = error.status === 413 ? "too_large" : "bad_request";
    return c.json({ error: { code, message: error.message || "bad request" } } satisfies ErrorBody, error.status);
  }
  console.log(JSON.stringify({ level: "info", event: "unhandled", error: String(error) }));
  return c.json({ error: { code: "internal", message: "internal error" } } satisfies ErrorBody, 500);
}

export function notFound(c: Context): Response {
  return c.json({ error: { code: "not_found", message: `no route ${c.req.method} ${new URL(c.req.url).pathname}` } }, 404);
}
