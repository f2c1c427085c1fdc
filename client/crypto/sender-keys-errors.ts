/** The one error type of the sender-key code, with a machine-readable reason (libsignal's error in brackets). */

/**
 * Why a sender-key operation failed:
 * - `no-sender-key-state`: nothing stored for this sender and distribution id, or no chain with the message's
 *   chain id (an unknown or rotated-away distribution) [NoSenderKeyState];
 * - `invalid-session`: the stored state cannot do this (e.g. encrypting with a state received from someone else,
 *   which has no private signing key) [InvalidSenderKeySession];
 * - `invalid-message`: malformed message, or its ciphertext does not decrypt [InvalidProtobufEncoding, InvalidMessage,
 *   CiphertextMessageTooShort];
 * - `legacy-version` / `unrecognized-version`: version nibble below / above 3 [LegacyCiphertextVersion,
 *   UnrecognizedCiphertextVersion, UnrecognizedMessageVersion];
 * - `bad-signature`: the XEdDSA signature does not verify under the sender's signing key [SignatureValidationFailed];
 * - `duplicate`: an iteration already decrypted (a replay), or one too old to have a stored key [DuplicatedMessage];
 * - `too-far-ahead`: more than MAX_FORWARD_JUMPS (25,000) iterations past the chain [InvalidMessage "too far into the future"];
 * - `chain-exhausted`: the 32-bit iteration counter is used up; start a new distribution [InvalidState].
 */
export type SenderKeyErrorCode =
  | "no-sender-key-state"
  | "invalid-session"
  | "invalid-message"
  | "legacy-version"
  | "unrecognized-version"
  | "bad-signature"
  | "duplicate"
  | "too-far-ahead"
  | "chain-exhausted";

/** A sender-key operation failed; `code` says why. Nothing was written to the store when this is thrown. */
export class SenderKeyError extends Error {
  override name = "SenderKeyError";
  constructor(
    readonly code: SenderKeyErrorCode,
    message: string,
  ) {
    super(message);
  }
}
