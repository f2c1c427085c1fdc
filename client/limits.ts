/**
 * Every number the SDK's behaviour depends on, named in one place (the server's limits are in
 * `src/protocol/limits.ts`). Apps can override the tunable ones through `ConnectOptions.tuning`.
 */
import { LIMITS } from "../src/protocol/limits";

export const CLIENT_DEFAULTS = {
  /** Reconnect backoff: first delay, cap, and full jitter (each delay is uniform in [0, min(cap, base·2^n)]). */
  reconnectBaseMs: 500,
  reconnectMaxMs: 30_000,
  /** Heartbeat: a `ping` after this long without any frame; the socket is given up if nothing arrives for `heartbeatTimeoutMs` more. */
  heartbeatIntervalMs: 25_000,
  heartbeatTimeoutMs: 10_000,
  /** Refresh the access token when it has less than this left (and on any 401). */
  tokenRefreshMarginMs: 60_000,
  /** One-time prekeys: upload a new batch when the server holds fewer than `preKeyMinimum` of a kind. */
  preKeyMinimum: 20,
  preKeyBatch: LIMITS.maxPreKeysPerUpload,
  /** Rotate the signed EC prekey and the last-resort Kyber prekey this often. */
  signedPreKeyRotationMs: 7 * 24 * 3600 * 1000,
  /** Keep superseded prekeys this long for messages still in flight (a sender may use an unanswered session for 30 days). */
  oldPreKeyRetentionMs: 30 * 24 * 3600 * 1000,
  /** How often a connected client checks its prekeys. */
  keyCheckIntervalMs: 12 * 3600 * 1000,
  /** Device-list repairs in a row for one send before it waits for the next connection. */
  maxRepairs: 3,
  /** Delay before retrying a send the server could not complete (`internal`, `rate_limited` without a hint). */
  retryDelayMs: 1_000,
  /** How long an HTTP call may take. */
  httpTimeoutMs: 30_000,
  /**
   * Pages holding only receipts are acknowledged together: after this long, or once `receiptAckMaxPending`
   * envelopes wait (well inside the server's delivery window); a page with a message is acknowledged at once.
   */
  receiptAckDelayMs: 1_000,
  receiptAckMaxPending: LIMITS.deliveryWindow / 4,
} as const;

export type Tuning = { -readonly [K in keyof typeof CLIENT_DEFAULTS]: number };
