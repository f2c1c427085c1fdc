/**
 * Safety numbers: Signal's numeric fingerprint (libsignal `fingerprint.rs`), identical digits to libsignal's
 * `Fingerprint.new(iterations, version, localIdentifier, localKey, remoteIdentifier, remoteKey)`.
 *
 * Each side's fingerprint is iterated SHA-512: h₀ = SHA-512(0x0000 ‖ key ‖ identifier ‖ key), then
 * hᵢ = SHA-512(hᵢ₋₁ ‖ key) up to `iterations` hashes in all (5200 in Signal's apps); `key` is the 33-byte
 * serialized identity key. (The 2-byte prefix is a constant 0; the `version` argument only labels the scannable form.)
 * A side's 30 digits are its first 30 bytes in six 5-byte big-endian chunks, each mod 100000 as 5 digits. The
 * 60-digit safety number is the two halves in ascending order, so both parties see the same number.
 *
 * The scannable form (what Signal puts in its QR code) is the protobuf CombinedFingerprints { 1 version,
 * 2 { 1 first 32 bytes of our hash }, 3 { 1 first 32 bytes of theirs } }; {@link compareScannableFingerprints}
 * checks a scanned one against ours.
 *
 * Identifiers: Signal's version 2 uses the 16 bytes of the account's UUID (ACI); in Relay that is the user id,
 * see {@link userIdIdentifier}. Version 1 used the phone number as UTF-8.
 */
import { BinaryReader, BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { sha512 } from "@noble/hashes/sha2.js";
import { equalBytes } from "@noble/curves/utils.js";
import { concatBytes, utf8ToBytes } from "@noble/hashes/utils.js";
import { assertEcPublicKey } from "../../src/protocol/keys";
import { uuidToBytes } from "./sender-keys-uuid";

/** Hash iterations Signal's apps use. */
export const FINGERPRINT_ITERATIONS = 5200;
/** Scannable-fingerprint version Signal's apps use today (identifiers are UUID bytes). */
export const FINGERPRINT_VERSION = 2;

/** Inputs of a safety number: each side's stable identifier and 33-byte serialized identity key. */
export interface SafetyNumberInput {
  localIdentifier: Uint8Array;
  localKey: Uint8Array;
  remoteIdentifier: Uint8Array;
  remoteKey: Uint8Array;
  /** Hash iterations, 2 to 1,000,000 (default {@link FINGERPRINT_ITERATIONS}). */
  iterations?: number;
  /** Version written into the scannable form (default {@link FINGERPRINT_VERSION}). */
  version?: number;
}

/** A safety number, in both forms. */
export interface SafetyNumber {
  /** The 60 digits, no spaces (libsignal's `displayableFingerprint().toString()`). */
  digits: string;
  /** The scannable form, byte for byte libsignal's `scannableFingerprint().toBuffer()`. */
  scannable: Uint8Array<ArrayBuffer>;
}

/** The bytes Signal's version 2 uses as a user's stable identifier: the 16 bytes of their UUID (Relay's user id). */
export function userIdIdentifier(userId: string): Uint8Array<ArrayBuffer> {
  return uuidToBytes(userId);
}

/** The bytes version 1 used: a phone number (E.164) as UTF-8. */
export function phoneNumberIdentifier(e164: string): Uint8Array {
  return utf8ToBytes(e164);
}

/** One side's iterated SHA-512 fingerprint (64 bytes), libsignal's `get_fingerprint`. */
export function fingerprintHash(identifier: Uint8Array, key: Uint8Array, iterations = FINGERPRINT_ITERATIONS): Uint8Array {
  if (!Number.isInteger(iterations) || iterations <= 1 || iterations > 1_000_000) throw new RangeError(`invalid fingerprint iteration count ${iterations}`);
  assertEcPublicKey(key, "identity key");
  let hash = sha512(concatBytes(new Uint8Array(2), key, identifier, key));
  const input = new Uint8Array(64 + key.length);
  input.set(key, 64);
  for (let i = 1; i < iterations; i++) {
    input.set(hash, 0);
    hash = sha512(input);
  }
  return hash;
}

/** One side's 30 digits: six big-endian 5-byte chunks of the hash, each mod 100000, zero-padded to 5 digits. */
export function fingerprintDigits(hash: Uint8Array): string {
  if (hash.length < 30) throw new RangeError("fingerprint hash must be at least 30 bytes");
  let digits = "";
  for (let i = 0; i < 30; i += 5) {
    let chunk = 0;
    for (let j = i; j < i + 5; j++) chunk = chunk * 256 + hash[j]!; // < 2^40, exact in a double
    digits += String(chunk % 100_000).padStart(5, "0");
  }
  return digits;
}

/** Both forms of the safety number between us (local) and them (remote), as libsignal's `Fingerprint.new` computes them. */
export function safetyNumber(input: SafetyNumberInput): SafetyNumber {
  const iterations = input.iterations ?? FINGERPRINT_ITERATIONS;
  const version = input.version ?? FINGERPRINT_VERSION;
  const local = fingerprintHash(input.localIdentifier, input.localKey, iterations);
  const remote = fingerprintHash(input.remoteIdentifier, input.remoteKey, iterations);
  const [l, r] = [fingerprintDigits(local), fingerprintDigits(remote)];
  return { digits: l < r ? l + r : r + l, scannable: encodeScannableFingerprint(version, local.subarray(0, 32), remote.subarray(0, 32)) };
}

/** The 60 digits in twelve groups of five, as Signal's apps show them ("12345 67890 …"). */
export function formatSafetyNumber(digits: string): string {
  return digits.replace(/\s+/g, "").replace(/(\d{5})(?=\d)/g, "$1 ");
}

/**
 * Whether two safety numbers are the same 60 digits, ignoring whitespace (so a formatted one compares with a bare
 * one). False for anything that is not 60 digits. Compares without early exit.
 */
export function safetyNumbersEqual(a: string, b: string): boolean {
  const norm = (s: string) => (typeof s === "string" ? s.replace(/\s+/g, "") : "");
  const [x, y] = [norm(a), norm(b)];
  if (!/^\d{60}$/.test(x) || !/^\d{60}$/.test(y)) return false;
  return equalBytes(utf8ToBytes(x), utf8ToBytes(y));
}

/** Serializes a scannable fingerprint exactly as libsignal (`CombinedFingerprints`). */
export function encodeScannableFingerprint(version: number, local: Uint8Array, remote: Uint8Array): Uint8Array<ArrayBuffer> {
  const w = new BinaryWriter();
  w.tag(1, WireType.Varint).uint32(version);
  w.tag(2, WireType.LengthDelimited).fork().tag(1, WireType.LengthDelimited).bytes(local).join();
  w.tag(3, WireType.LengthDelimited).fork().tag(1, WireType.LengthDelimited).bytes(remote).join();
  return w.finish();
}

/** A parsed scannable fingerprint; missing parts are undefined. */
export interface ScannableFingerprint {
  version: number | undefined;
  local: Uint8Array | undefined;
  remote: Uint8Array | undefined;
}

/** Scanned fingerprint's version differs from ours (libsignal's `VersionMismatch`): one side needs to update. */
export class FingerprintVersionMismatchError extends Error {
  override name = "FingerprintVersionMismatchError";
  constructor(
    readonly theirs: number,
    readonly ours: number,
  ) {
    super(`fingerprint version mismatch: theirs ${theirs}, ours ${ours}`);
  }
}

/** A scannable fingerprint is malformed or incomplete (libsignal's `ParsingError`). */
export class FingerprintParsingError extends Error {
  override name = "FingerprintParsingError";
}

/** Parses a scannable fingerprint; throws {@link FingerprintParsingError} on malformed protobuf. */
export function parseScannableFingerprint(bytes: Uint8Array): ScannableFingerprint {
  const out: ScannableFingerprint = { version: undefined, local: undefined, remote: undefined };
  try {
    const r = new BinaryReader(bytes);
    while (r.pos < r.len) {
      const [no, type] = r.tag();
      if (no === 1 && type === WireType.Varint) out.version = r.uint32();
      else if ((no === 2 || no === 3) && type === WireType.LengthDelimited) {
        const inner = new BinaryReader(r.bytes());
        let content: Uint8Array | undefined;
        while (inner.pos < inner.len) {
          const [n, t] = inner.tag();
          if (n === 1 && t === WireType.LengthDelimited) content = inner.bytes().slice();
          else inner.skip(t, n);
        }
        out[no === 2 ? "local" : "remote"] = content;
      } else r.skip(type, no);
    }
  } catch (e) {
    throw new FingerprintParsingError(`malformed scannable fingerprint: ${(e as Error).message}`);
  }
  return out;
}

/**
 * libsignal's `ScannableFingerprint.compare`: true when the scanned fingerprint `theirs` is the mirror of `ours`
 * (their local is our remote and vice versa). Throws {@link FingerprintVersionMismatchError} when the versions differ,
 * {@link FingerprintParsingError} when either is malformed or incomplete.
 */
export function compareScannableFingerprints(ours: Uint8Array, theirs: Uint8Array): boolean {
  const a = parseScannableFingerprint(ours);
  if (a.version === undefined || !a.local || !a.remote) throw new FingerprintParsingError("our scannable fingerprint is incomplete");
  const b = parseScannableFingerprint(theirs);
  const theirVersion = b.version ?? 0;
  if (theirVersion !== a.version) throw new FingerprintVersionMismatchError(theirVersion, a.version);
  if (!b.local || !b.remote) throw new FingerprintParsingError("their scannable fingerprint is incomplete");
  const same1 = equalBytes(b.local, a.remote);
  const same2 = equalBytes(b.remote, a.local);
  return same1 && same2;
}
