/**
 * Errors of the 1:1 session layer. Every refusal is a {@link ProtocolError} subclass with a stable
 * `code`, so the SDK can react (re-fetch a bundle, ask the user to approve a new identity, drop a
 * duplicate) without parsing messages. Messages name what was wrong, never key material.
 */
import type { ProtocolAddress } from "./address";

/** Machine-readable reason of a {@link ProtocolError}. */
export type ProtocolErrorCode =
  | "invalid_message" // malformed, or failed to authenticate or decrypt
  | "duplicate_message" // its message key was already used (a replay or a re-delivery)
  | "untrusted_identity" // the peer's identity key is not (or no longer) trusted by the store
  | "invalid_signature" // a bundle's signed prekey or Kyber prekey signature does not verify
  | "invalid_key" // a key has the wrong length, type byte or is not a usable curve point
  | "no_session" // no session with that address (or only a stale unacknowledged one)
  | "invalid_prekey_id" // a PreKeySignalMessage names a prekey the store does not hold
  | "invalid_session"; // a stored session record cannot be read

/** Base class of every error this layer throws on purpose. */
export class ProtocolError extends Error {
  override name = "ProtocolError";
  constructor(
    readonly code: ProtocolErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** A message is malformed, or does not authenticate or decrypt under any session. */
export class InvalidMessageError extends ProtocolError {
  override name = "InvalidMessageError";
  constructor(message: string) {
    super("invalid_message", message);
  }
}

/** The message's key was already consumed: a replayed or re-delivered message. */
export class DuplicateMessageError extends ProtocolError {
  override name = "DuplicateMessageError";
  constructor(
    readonly chainIndex: number,
    readonly counter: number,
  ) {
    super("duplicate_message", `duplicate message: counter ${counter} is behind the chain (at ${chainIndex}) and its key is gone`);
  }
}

/** The store does not trust the identity key presented for `address`. */
export class UntrustedIdentityError extends ProtocolError {
  override name = "UntrustedIdentityError";
  constructor(readonly address: ProtocolAddress) {
    super("untrusted_identity", `untrusted identity for ${address.userId}.${address.deviceId}`);
  }
}

/** A bundle's prekey signature does not verify against its identity key. */
export class InvalidSignatureError extends ProtocolError {
  override name = "InvalidSignatureError";
  constructor(what: string) {
    super("invalid_signature", `${what} signature does not verify against the identity key`);
  }
}

/** A key is unusable: wrong length or type byte, or not a valid curve point. */
export class InvalidKeyError extends ProtocolError {
  override name = "InvalidKeyError";
  constructor(message: string) {
    super("invalid_key", message);
  }
}

/** There is no usable session with the address: process a bundle (or wait for their PreKeySignalMessage). */
export class NoSessionError extends ProtocolError {
  override name = "NoSessionError";
  constructor(
    readonly address: ProtocolAddress,
    detail = "no session",
  ) {
    super("no_session", `${detail} for ${address.userId}.${address.deviceId}`);
  }
}

/** A PreKeySignalMessage names a one-time, signed or Kyber prekey this device does not hold (any more). */
export class InvalidPreKeyIdError extends ProtocolError {
  override name = "InvalidPreKeyIdError";
  constructor(kind: "one-time prekey" | "signed prekey" | "Kyber prekey", id: number) {
    super("invalid_prekey_id", `no ${kind} with id ${id}`);
  }
}

/** A stored session record is corrupt or of an unknown format. */
export class InvalidSessionError extends ProtocolError {
  override name = "InvalidSessionError";
  constructor(message: string) {
    super("invalid_session", `invalid session record: ${message}`);
  }
}
