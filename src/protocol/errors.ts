import type { GroupEpoch } from "./groups";

/** Error codes shared by HTTP bodies (`{"error":{"code","message"}}`) and WebSocket `error` frames. */
export const ERROR_CODES = [
  "bad_request", // malformed JSON, failed schema validation, bad base64
  "invalid_phone",
  "invalid_key", // wrong length or type byte
  "invalid_signature", // a prekey signature does not verify against the identity key
  "unauthorized", // missing, malformed, expired or revoked token
  "forbidden",
  "not_found",
  "too_large",
  "rate_limited",
  "invalid_code", // wrong, expired or burnt verification or link code
  "too_many_devices",
  "mismatched_devices", // the send's device list is incomplete, has extras, or names stale registration ids
  "stale_epoch", // a group send encrypted for an older membership: rotate keys and retry with the same id
  "too_many_members",
  "unknown_frame",
  "invalid_ack",
  "conflict",
  "sms_failed", // the SMS provider refused or could not be reached
  "internal",
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/** The exact device repair a client needs after a `mismatched_devices` refusal, per user. */
export interface DeviceMismatch {
  userId: string;
  /** Current devices the send did not address. */
  missing: number[];
  /** Addressed devices that do not exist (or are the sending device itself). */
  extra: number[];
  /** Addressed devices whose registration id changed: the device was re-registered. */
  stale: number[];
}

export interface ErrorBody {
  error: { code: ErrorCode; message: string; mismatches?: DeviceMismatch[]; retryAfterMs?: number; group?: GroupEpoch };
}

/** An error with its HTTP status; thrown anywhere, rendered once by the app's error handler. */
export class RelayError extends Error {
  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    message: string,
    readonly extra: Omit<ErrorBody["error"], "code" | "message"> = {},
  ) {
    super(message);
    this.name = "RelayError";
  }

  toBody(): ErrorBody {
    return { error: { code: this.code, message: this.message, ...this.extra } };
  }
}
