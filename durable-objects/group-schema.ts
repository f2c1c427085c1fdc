/** SQLite schema of a GroupDO: membership, the ordered log, the fan-out outbox, receipts, invites. */
export const GROUP_SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS members (
  user_id   TEXT PRIMARY KEY,
  role      TEXT NOT NULL,      -- admin | member
  since     INTEGER NOT NULL    -- group sequence of the event that made them a member
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS members_role ON members(role) WHERE role = 'admin';
-- One row per message or membership event, in group order. envelope: the JSON entry without an inbox seq.
CREATE TABLE IF NOT EXISTS log (
  seq           INTEGER PRIMARY KEY,
  kind          TEXT NOT NULL,   -- message | event
  sender        TEXT,
  sender_device INTEGER,
  client_id     TEXT,
  ts            INTEGER NOT NULL,
  recipients    INTEGER NOT NULL DEFAULT 0, -- members a message was sent to (receipts count against it)
  envelope      TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS log_dedupe ON log(sender, sender_device, client_id) WHERE client_id IS NOT NULL;
-- Fan-out on write still owed: (member, sequence). store: copy the entry into the member's inboxes;
-- membership: tell the member's UserDO it joined (1) or left (0) the group, or NULL.
CREATE TABLE IF NOT EXISTS fanout (
  user_id    TEXT NOT NULL,
  seq        INTEGER NOT NULL,
  store      INTEGER NOT NULL,
  membership INTEGER,
  PRIMARY KEY (user_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS receipts (
  seq          INTEGER NOT NULL,
  user_id      TEXT NOT NULL,
  delivered_at INTEGER,
  read_at      INTEGER,
  PRIMARY KEY (seq, user_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS invites (
  secret_hash TEXT PRIMARY KEY,  -- SHA-256 of the token's secret, base64url
  approval    INTEGER NOT NULL,
  created_by  TEXT NOT NULL,
  created_at  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS join_requests (
  user_id      TEXT PRIMARY KEY,
  requested_at INTEGER NOT NULL
) WITHOUT ROWID;
-- Members with a live socket, told of new entries of a fan-out-on-read group (dropped when found offline).
CREATE TABLE IF NOT EXISTS watchers (
  user_id TEXT PRIMARY KEY
) WITHOUT ROWID;
`;
