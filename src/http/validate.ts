import { bodyLimit } from "hono/body-limit";
import { validator } from "hono/validator";
import type * as z from "zod";
import { RelayError } from "../protocol/errors";
import { LIMITS } from "../protocol/limits";

/** Refuses bodies over `LIMITS.maxRequestBytes` with 413 before reading them. */
export const limitBody = bodyLimit({
  maxSize: LIMITS.maxRequestBytes,
  onError: () => {
    throw new RelayError(413, "too_large", `request body exceeds ${LIMITS.maxRequestBytes} bytes`);
  },
});

/** Validates the JSON body with a zod schema; the first issue becomes a 400 `bad_request`. */
export function jsonBody<S extends z.ZodType>(schema: S) {
  return validator("json", (value): z.output<S> => {
    const result = schema.safeParse(value);
    if (result.success) return result.data;
    const issue = result.error.issues[0];
    throw new RelayError(400, "bad_request", `${issue?.path.join(".") || "body"}: ${issue?.message ?? "invalid"}`);
  });
}

/** The client's address as Cloudflare reports it (a fixed "local" when running without the edge). */
export function clientIp(headers: Headers): string {
  return headers.get("cf-connecting-ip") ?? "local";
}
