/**
 * Every limit Relay enforces, in one place. The README prints this table (`npm run limits`);
 * handlers import names from here instead of writing numbers.
 */
export const LIMITS = {
  /** Largest WebSocket frame a client may send, in bytes (a send frame carries one body per device). */
  maxFrameBytes: 512 * 1024,
  /** Largest single ciphertext body, in bytes after base64 decoding. */
  maxEnvelopeBytes: 64 * 1024,
  /** Largest HTTP request body, in bytes (a key upload with 100 Kyber prekeys is ~220 KB). */
  maxRequestBytes: 512 * 1024,
  /** Devices per user: a primary and four linked ones, as WhatsApp allows. */
  maxDevicesPerUser: 5,
  /** One-time EC and one-time Kyber prekeys per upload, each; an upload replaces that pool. */
  maxPreKeysPerUpload: 100,
  /** Client message ids: 1..64 characters of [A-Za-z0-9_-]. */
  maxClientIdLength: 64,
  /** Message references one read receipt may carry. */
  maxReceiptRefs: 100,
  /** `receipts` batches one `receipts_ack` may name. */
  maxReceiptAckBatches: 256,
  /** Characters of a `receipts` batch id. */
  maxBatchIdChars: 40,
  /** Envelopes pushed to a device before it must acknowledge (flow-control window). */
  deliveryWindow: 1000,
  /** Envelopes per `deliver` frame when draining a backlog. */
  deliveryPageSize: 250,
  /** Soft cap on the bytes of one `deliver` frame (a page stops early past it; one envelope always fits). */
  deliveryPageBytes: 768 * 1024,
  /** How long a (sender device, client id) pair is remembered to make retried sends idempotent. */
  dedupeWindowMs: 7 * 24 * 3600 * 1000,

  /** Members of a group, admins included (WhatsApp's figure). */
  maxGroupMembers: 1024,
  /** Groups up to this many members get each message copied into every member device's inbox; larger ones read the log. */
  maxFanoutOnWrite: 256,
  /** Subscribers of a broadcast channel. */
  maxChannelSubscribers: 100_000,
  /** The group's encrypted title, description and avatar reference, in bytes. */
  maxGroupInfoBytes: 4 * 1024,
  /** New log entries ride inside the live `group_notice` while together they are at most this size (online members need no read). */
  maxNoticeEntryBytes: 8 * 1024,
  /** Entries one read of a group's log returns. */
  groupLogPageSize: 500,
  /** Entries a group keeps in its log for members reading by cursor (older ones are dropped once fanned out). */
  groupLogRetention: 10_000,
  /** Open invite links per group. */
  maxGroupInvites: 20,
  /** Pending join requests per group (invites that need an admin's approval). */
  maxJoinRequests: 1000,

  /** Verification codes: digits, lifetime, wrong guesses before the code is burnt. */
  codeDigits: 6,
  codeTtlMs: 5 * 60 * 1000,
  codeMaxAttempts: 5,
  /** Link codes for adding a device. */
  linkCodeTtlMs: 10 * 60 * 1000,

  /** Access tokens (JWT, EdDSA) and refresh tokens. */
  accessTokenTtlSeconds: 15 * 60,
  refreshTokenTtlMs: 30 * 24 * 3600 * 1000,
} as const;

/** Fixed-window rate limits: at most `max` events per `windowMs` per key. */
export const RATE_LIMITS = {
  /** Verification codes sent to one phone number. */
  codePerPhone: { max: 3, windowMs: 10 * 60 * 1000 },
  /** Verification codes requested from one client IP. */
  codePerIp: { max: 20, windowMs: 60 * 60 * 1000 },
  /** Code verification attempts from one client IP (codes themselves burn after `codeMaxAttempts`). */
  verifyPerIp: { max: 60, windowMs: 60 * 60 * 1000 },
  /** Prekey bundle fetches by one device (each claims one-time keys, so draining them is limited). */
  bundlesPerDevice: { max: 300, windowMs: 60 * 60 * 1000 },
} as const;

export type RateLimitName = keyof typeof RATE_LIMITS;
