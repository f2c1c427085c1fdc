-- The directory: accounts, devices and their long-lived public keys, token families, one-time codes.
-- One-time prekeys and inboxes live in each user's Durable Object, not here.

CREATE TABLE accounts (
  user_id       TEXT PRIMARY KEY,
  phone         TEXT NOT NULL UNIQUE,      -- E.164
  created_at    INTEGER NOT NULL
);

CREATE TABLE devices (
  user_id           TEXT NOT NULL REFERENCES accounts(user_id) ON DELETE CASCADE,
  device_id         INTEGER NOT NULL,
  registration_id   INTEGER NOT NULL,
  name              TEXT,
  identity_key      TEXT NOT NULL,         -- base64, 33 bytes (0x05 ‖ X25519)
  signed_prekey_id  INTEGER NOT NULL,
  signed_prekey     TEXT NOT NULL,         -- base64, 33 bytes
  signed_prekey_sig TEXT NOT NULL,         -- base64, 64-byte XEdDSA
  kyber_prekey_id   INTEGER NOT NULL,      -- last-resort Kyber1024 prekey
  kyber_prekey      TEXT NOT NULL,         -- base64, 1569 bytes (0x08 ‖ key)
  kyber_prekey_sig  TEXT NOT NULL,
  token_family      TEXT NOT NULL,         -- access and refresh tokens must carry this family
  created_at        INTEGER NOT NULL,
  PRIMARY KEY (user_id, device_id)
);

CREATE TABLE refresh_tokens (
  token_hash TEXT PRIMARY KEY,             -- SHA-256 of the opaque token, base64url
  user_id    TEXT NOT NULL,
  device_id  INTEGER NOT NULL,
  family     TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  spent_at   INTEGER                       -- set on rotation; presenting a spent token revokes the family
);
CREATE INDEX refresh_tokens_family ON refresh_tokens(family);

CREATE TABLE verification_codes (
  phone      TEXT PRIMARY KEY,
  code_hash  TEXT NOT NULL,                -- HMAC-SHA256(pepper, phone ‖ code)
  expires_at INTEGER NOT NULL,
  attempts   INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE link_codes (
  code_hash  TEXT PRIMARY KEY,
  user_id    TEXT NOT NULL,
  expires_at INTEGER NOT NULL
);

-- Fixed-window counters for rate limits (bucket = "<limit name>:<key hash>").
CREATE TABLE rate_limits (
  bucket       TEXT PRIMARY KEY,
  window_start INTEGER NOT NULL,
  count        INTEGER NOT NULL
);
