/** SQLite schema of a UserDO: the user's devices, each device's ordered inbox, dedupe memory, one-time prekeys. */
export const USER_SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS devices (
  device_id       INTEGER PRIMARY KEY,
  registration_id INTEGER NOT NULL,
  family          TEXT NOT NULL,   -- tokens must carry it; replaced on revocation
  next_seq        INTEGER NOT NULL -- past every sequence handed out (reserved in blocks; see inbox.ts)
);
-- One row per envelope per device. envelope: the JSON object without its seq.
-- sender/sender_device/client_id are set for messages from other users (delivered receipts), else NULL.
-- shared: the same message was stored for several of this user's devices (the first ack owes the receipt).
CREATE TABLE IF NOT EXISTS inbox (
  device_id     INTEGER NOT NULL,
  seq           INTEGER NOT NULL,
  sender        TEXT,
  sender_device INTEGER,
  client_id     TEXT,
  shared        INTEGER NOT NULL DEFAULT 0,
  envelope      TEXT NOT NULL,
  PRIMARY KEY (device_id, seq)
) WITHOUT ROWID;
-- Sequences are reserved in blocks now; objects created before keep no per-delete trigger.
DROP TRIGGER IF EXISTS inbox_keeps_sequence;
-- What this user has accepted, keyed by the sender's (user, device, client id): retries are acknowledged, not stored.
CREATE TABLE IF NOT EXISTS received (
  sender        TEXT NOT NULL,
  sender_device INTEGER NOT NULL,
  client_id     TEXT NOT NULL,
  ts            INTEGER NOT NULL,
  delivered     INTEGER NOT NULL DEFAULT 0, -- a delivered receipt was emitted (tracked for shared messages)
  PRIMARY KEY (sender, sender_device, client_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS received_ts ON received(ts);
CREATE TABLE IF NOT EXISTS prekeys (
  device_id  INTEGER NOT NULL,
  kind       INTEGER NOT NULL, -- 0: one-time EC prekey, 1: one-time Kyber prekey
  key_id     INTEGER NOT NULL,
  public_key TEXT NOT NULL,
  signature  TEXT,
  PRIMARY KEY (device_id, kind, key_id)
) WITHOUT ROWID;
-- Receipts owed to other users, kept until their UserDO has stored them (an alarm retries).
CREATE TABLE IF NOT EXISTS receipt_outbox (
  id      INTEGER PRIMARY KEY,
  target  TEXT NOT NULL,
  receipt TEXT NOT NULL -- JSON ReceiptDelivery
);
-- The groups and channels this user is a member of (kept by the groups' fan-out).
CREATE TABLE IF NOT EXISTS groups (
  group_id TEXT PRIMARY KEY,
  kind     TEXT NOT NULL, -- group | channel
  fanout   TEXT NOT NULL  -- write | read
) WITHOUT ROWID;
`;
