/** Every refusal is a JSON `{"error":{"code","message"}}` body: malformed bodies, oversize bodies, unknown routes. */
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { capturedSms } from "../../../src/auth/sms";
import { LIMITS } from "../../../src/protocol/limits";
import { api, newPhone, registerUser } from "../support/relay";

async function raw(method: string, path: string, body: BodyInit, headers: Record<string, string> = { "content-type": "application/json" }) {
  const response = await exports.default.fetch(new Request(`https://relay.test${path}`, { method, body, headers }));
  return { status: response.status, contentType: response.headers.get("content-type"), json: await response.json<{ error: { code: string; message: string } }>() };
}

/** A request body of exactly `bytes` bytes: a code request for `phone` padded with JSON whitespace. */
const paddedCodeRequest = (phone: string, bytes: number) => JSON.stringify({ phone }).padEnd(bytes, " ");

const codeRows = async (phone: string) =>
  (await env.DB.prepare("SELECT COUNT(*) AS n FROM verification_codes WHERE phone = ?").bind(phone).first<{ n: number }>())!.n;

describe("malformed bodies", () => {
  it("answer 400 bad_request for JSON that does not parse, with or without a JSON content type", async () => {
    const alice = await registerUser();
    const cases: [string, string, Record<string, string>][] = [
      ["/v1/registration/code", "{not json", { "content-type": "application/json" }],
      ["/v1/registration/code", '{"phone": "+14155550123"', { "content-type": "application/json" }],
      ["/v1/registration/code", "", { "content-type": "application/json" }],
      ["/v1/registration/code", '{"phone":"+14155550123"}', { "content-type": "text/plain" }],
      ["/v1/tokens/refresh", "[]", { "content-type": "application/json" }],
      ["/v1/registration/verify", "null", { "content-type": "application/json" }],
    ];
    for (const [path, body, headers] of cases) {
      const res = await raw("POST", path, body, headers);
      expect(res.status, `${path} ${body}`).toBe(400);
      expect(res.contentType).toMatch(/^application\/json/);
      expect(res.json).toEqual({ error: { code: "bad_request", message: expect.any(String) } });
    }
    const settings = await raw("PUT", "/v1/settings", "{", { "content-type": "application/json", authorization: `Bearer ${alice.session.accessToken}` });
    expect(settings.status).toBe(400);
    expect(settings.json.error.code).toBe("bad_request");
  });

  it("answer 400 bad_request naming the field that fails the schema", async () => {
    const res = await api("POST", "/v1/registration/code", { body: { phone: 14155550123 } });
    expect(res.status).toBe(400);
    expect(res.json.error).toEqual({ code: "bad_request", message: expect.stringMatching(/^phone: /) });
  });
});

describe("oversize bodies", () => {
  it(`answer 413 too_large past ${LIMITS.maxRequestBytes} bytes, before acting on them`, async () => {
    const phone = newPhone();
    const sent = capturedSms.length;
    const res = await raw("POST", "/v1/registration/code", paddedCodeRequest(phone, LIMITS.maxRequestBytes + 1));
    expect(res.status).toBe(413);
    expect(res.json).toEqual({ error: { code: "too_large", message: `request body exceeds ${LIMITS.maxRequestBytes} bytes` } });
    expect(capturedSms.length).toBe(sent);
    expect(await codeRows(phone)).toBe(0);
  });

  it("answer 413 for an oversize body sent without a Content-Length", async () => {
    const phone = newPhone();
    const bytes = new TextEncoder().encode(paddedCodeRequest(phone, LIMITS.maxRequestBytes + 1));
    const stream = new ReadableStream({
      start(controller) {
        for (let i = 0; i < bytes.length; i += 64 * 1024) controller.enqueue(bytes.slice(i, i + 64 * 1024));
        controller.close();
      },
    });
    const res = await raw("POST", "/v1/registration/code", stream);
    expect(res.status).toBe(413);
    expect(res.json.error.code).toBe("too_large");
    expect(await codeRows(phone)).toBe(0);
  });

  it(`accept a body of exactly ${LIMITS.maxRequestBytes} bytes`, async () => {
    const phone = newPhone();
    const res = await raw("POST", "/v1/registration/code", paddedCodeRequest(phone, LIMITS.maxRequestBytes));
    expect(res.status).toBe(202);
    expect(await codeRows(phone)).toBe(1);
  });
});

describe("unknown routes", () => {
  it("answer 404 not_found in JSON", async () => {
    for (const path of ["/", "/v1", "/v1/nope", "/v2/health", "/v1/devices/abc/extra"]) {
      const res = await api("GET", path);
      expect(res.status, path).toBe(404);
      expect(res.json, path).toEqual({ error: { code: "not_found", message: `no route GET ${path}` } });
    }
  });

  it("answer 404 for a known path with the wrong method", async () => {
    for (const [method, path] of [
      ["GET", "/v1/registration/code"],
      ["PUT", "/v1/registration/verify"],
      ["GET", "/v1/tokens/refresh"],
      ["POST", "/v1/health"],
      ["DELETE", "/v1/connect"],
      ["PATCH", "/v1/devices/link"],
    ]) {
      const res = await api(method!, path!);
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(res.json.error.code, `${method} ${path}`).toBe("not_found");
    }
  });

  it("still answer the routes that exist", async () => {
    const res = await api("GET", "/v1/health");
    expect(res).toMatchObject({ status: 200, json: { ok: true } });
  });
});
