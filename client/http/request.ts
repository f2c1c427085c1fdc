/** One JSON request to the Relay HTTP API, with the server's typed errors (`{"error":{"code","message"}}`). */
import type { ErrorBody } from "../../src/protocol/errors";
import { RelayApiError } from "../errors";

/** The `fetch` the SDK uses (the global one unless the app passes its own). */
export type Fetch = typeof globalThis.fetch;

export interface RequestOptions {
  body?: unknown;
  /** Access token for `Authorization: Bearer`. */
  token?: string;
  timeoutMs: number;
  fetch: Fetch;
}

/**
 * Sends `method path` to `baseUrl` and returns the parsed JSON body (undefined for 204). Throws
 * {@link RelayApiError} with the server's code, status and `Retry-After`, or code `network` when the
 * server could not be reached.
 * @example
 * const counts = await requestJson<PreKeyCounts>("https://relay.example", "GET", "/v1/keys", { token, timeoutMs: 30_000, fetch });
 */
export async function requestJson<T>(baseUrl: string, method: string, path: string, options: RequestOptions): Promise<T> {
  const headers: Record<string, string> = {};
  if (options.body !== undefined) headers["content-type"] = "application/json";
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  let response: Response;
  try {
    response = await options.fetch(baseUrl.replace(/\/+$/, "") + path, {
      method,
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      signal: AbortSignal.timeout(options.timeoutMs),
    });
  } catch (error) {
    throw new RelayApiError(0, "network", `${method} ${path}: ${(error as Error).message}`);
  }
  const text = await response.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  if (response.ok) return json as T;
  const error = (json as ErrorBody | undefined)?.error;
  const retryAfter = Number(response.headers.get("retry-after"));
  throw new RelayApiError(
    response.status,
    error?.code ?? "internal",
    `${method} ${path}: ${error?.message ?? `HTTP ${response.status}`}`,
    error?.retryAfterMs ?? (Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : undefined),
    error?.mismatches,
  );
}
