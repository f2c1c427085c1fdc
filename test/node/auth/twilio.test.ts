import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { capturedSms, smsProvider, type SmsEnv } from "../../../src/auth/sms";
import { twilioProvider } from "../../../src/auth/sms/twilio";
import { RelayError } from "../../../src/protocol/errors";

interface Captured {
  method?: string;
  url?: string;
  headers: IncomingHttpHeaders;
  body: string;
}

let server: Server;
let base: string;
let requests: Captured[] = [];
let reply: { status: number; body: unknown } = { status: 201, body: { sid: "SM123", status: "queued" } };

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (chunk: string) => (body += chunk));
    req.on("end", () => {
      requests.push({ method: req.method, url: req.url, headers: req.headers, body });
      res.writeHead(reply.status, { "content-type": "application/json" });
      res.end(JSON.stringify(reply.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

beforeEach(() => {
  requests = [];
  reply = { status: 201, body: { sid: "SM123", status: "queued" } };
});

const config = (extra: Partial<SmsEnv> = {}): SmsEnv => ({
  SMS_PROVIDER: "twilio",
  TWILIO_API_BASE: base,
  TWILIO_ACCOUNT_SID: "AC0123456789abcdef",
  TWILIO_AUTH_TOKEN: "s3cret-token",
  TWILIO_FROM: "+15550001111",
  ...extra,
});

async function failure(promise: Promise<unknown>): Promise<RelayError> {
  const error = await promise.then(
    () => { throw new Error("expected a failure"); },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(RelayError);
  return error as RelayError;
}

describe("twilio SMS provider", () => {
  it("posts the message to the Messages resource with Basic auth", async () => {
    await smsProvider(config()).send("+15551234567", "Your Relay code is 123456");
    expect(requests).toHaveLength(1);
    const [request] = requests;
    expect(request!.method).toBe("POST");
    expect(request!.url).toBe("/2010-04-01/Accounts/AC0123456789abcdef/Messages.json");
    expect(request!.headers.authorization).toBe(`Basic ${Buffer.from("AC0123456789abcdef:s3cret-token").toString("base64")}`);
    expect(request!.headers["content-type"]).toBe("application/x-www-form-urlencoded");
    const form = new URLSearchParams(request!.body);
    expect(Object.fromEntries(form)).toEqual({ To: "+15551234567", Body: "Your Relay code is 123456", From: "+15550001111" });
  });

  it("uses the messaging service when one is configured", async () => {
    await smsProvider(config({ TWILIO_FROM: undefined, TWILIO_MESSAGING_SERVICE_SID: "MG42" })).send("+15551234567", "hi");
    expect(Object.fromEntries(new URLSearchParams(requests[0]!.body))).toEqual({
      To: "+15551234567",
      Body: "hi",
      MessagingServiceSid: "MG42",
    });
  });

  it("turns a refusal into 502 sms_failed without leaking secrets", async () => {
    reply = { status: 400, body: { code: 21211, message: "The 'To' number is not a valid phone number.", status: 400 } };
    const error = await failure(smsProvider(config()).send("+15551234567", "hi"));
    expect(error).toMatchObject({ status: 502, code: "sms_failed" });
    expect(error.message).toContain("400");
    expect(error.message).toContain("21211");
    expect(error.message).not.toContain("s3cret-token");
    expect(error.message).not.toContain("AC0123456789abcdef");
  });

  it("turns an unreachable API into 502 sms_failed", async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const error = await failure(twilioProvider(config({ TWILIO_API_BASE: `http://127.0.0.1:${port}` })).send("+15551234567", "hi"));
    expect(error).toMatchObject({ status: 502, code: "sms_failed" });
    expect(error.message).not.toContain("s3cret-token");
  });

  it("names the missing settings", () => {
    const none = () => smsProvider({ SMS_PROVIDER: "twilio" });
    expect(none).toThrow(RelayError);
    expect(none).toThrow(
      "Twilio provider is not configured: set TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_FROM or TWILIO_MESSAGING_SERVICE_SID",
    );
    try {
      none();
    } catch (error) {
      expect(error).toMatchObject({ status: 500, code: "internal" });
    }
    expect(() => smsProvider(config({ TWILIO_AUTH_TOKEN: undefined }))).toThrow(
      "Twilio provider is not configured: set TWILIO_AUTH_TOKEN",
    );
    expect(() => smsProvider(config({ TWILIO_FROM: "" }))).toThrow(/TWILIO_FROM or TWILIO_MESSAGING_SERVICE_SID/);
  });
});

describe("smsProvider", () => {
  it("console: logs one JSON line with the phone masked but for its last two digits", async () => {
    const log = vi.spyOn(console, "log").mockImplementation(() => {});
    try {
      await smsProvider({ SMS_PROVIDER: "console" }).send("+15551234567", "Your Relay code is 123456");
      expect(log).toHaveBeenCalledTimes(1);
      expect(JSON.parse(String(log.mock.calls[0]![0]))).toEqual({
        event: "sms.console",
        to: "+•••••••••67",
        text: "Your Relay code is 123456",
      });
    } finally {
      log.mockRestore();
    }
  });

  it("capture: records messages without logging", async () => {
    const log = vi.spyOn(console, "log");
    try {
      const before = capturedSms.length;
      await smsProvider({ SMS_PROVIDER: "capture" }).send("+15551234567", "code 654321");
      expect(capturedSms.slice(before)).toEqual([{ to: "+15551234567", text: "code 654321" }]);
      expect(log).not.toHaveBeenCalled();
    } finally {
      log.mockRestore();
    }
  });

  it("rejects an unknown provider name", () => {
    expect(() => smsProvider({ SMS_PROVIDER: "carrier-pigeon" })).toThrow(/Unknown SMS_PROVIDER "carrier-pigeon"/);
  });
});
