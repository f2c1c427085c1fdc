/** SMS provider that sends through Twilio's Messages REST API (plain fetch: runs in Workers and Node). */
import { RelayError } from "../../protocol/errors";
import type { SmsProvider } from "./index";

/** Twilio settings, named as the Worker's vars and secrets. */
export interface TwilioConfig {
  TWILIO_ACCOUNT_SID?: string;
  TWILIO_AUTH_TOKEN?: string;
  /** Sender number (E.164); used when no messaging service is set. */
  TWILIO_FROM?: string;
  /** Messaging service; preferred over `TWILIO_FROM` when both are set. */
  TWILIO_MESSAGING_SERVICE_SID?: string;
  /** API origin; defaults to https://api.twilio.com (tests point it at a local server). */
  TWILIO_API_BASE?: string;
}

const DEFAULT_API_BASE = "https://api.twilio.com";
const TIMEOUT_MS = 10_000;

/** A provider posting to Twilio; throws 500 `internal` naming the missing settings when not configured. */
export function twilioProvider(config: TwilioConfig): SmsProvider {
  const { TWILIO_ACCOUNT_SID: sid, TWILIO_AUTH_TOKEN: authToken, TWILIO_FROM: from } = config;
  const serviceSid = config.TWILIO_MESSAGING_SERVICE_SID;
  const missing = [
    ...(sid ? [] : ["TWILIO_ACCOUNT_SID"]),
    ...(authToken ? [] : ["TWILIO_AUTH_TOKEN"]),
    ...(from || serviceSid ? [] : ["TWILIO_FROM or TWILIO_MESSAGING_SERVICE_SID"]),
  ];
  if (!sid || !authToken || missing.length > 0) {
    throw new RelayError(500, "internal", `Twilio provider is not configured: set ${missing.join(", ")}`);
  }
  const base = (config.TWILIO_API_BASE ?? DEFAULT_API_BASE).replace(/\/+$/, "");
  const url = `${base}/2010-04-01/Accounts/${encodeURIComponent(sid)}/Messages.json`;
  const authorization = `Basic ${btoa(`${sid}:${authToken}`)}`;
  const sender: [string, string] = serviceSid ? ["MessagingServiceSid", serviceSid] : ["From", from!];

  return {
    async send(to, text) {
      let response: Response;
      try {
        response = await fetch(url, {
          method: "POST",
          headers: { authorization, "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
          body: new URLSearchParams([["To", to], ["Body", text], sender]).toString(),
          signal: AbortSignal.timeout(TIMEOUT_MS),
        });
      } catch {
        throw new RelayError(502, "sms_failed", "SMS provider could not be reached");
      }
      const body = await response.text().catch(() => "");
      if (!response.ok) {
        throw new RelayError(502, "sms_failed", `SMS provider refused the message (HTTP ${response.status}${twilioErrorCode(body)})`);
      }
    },
  };
}

function twilioErrorCode(body: string): string {
  try {
    const code: unknown = (JSON.parse(body) as { code?: unknown }).code;
    return typeof code === "number" ? `, Twilio error ${code}` : "";
  } catch {
    return "";
  }
}
