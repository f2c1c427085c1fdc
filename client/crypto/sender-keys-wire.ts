/**
 * Wire formats of Signal's sender keys, byte for byte as libsignal (`protocol.rs`, `wire.proto`) writes and reads them:
 *
 * - SenderKeyDistributionMessage: `0x33` ‖ protobuf { 1 distribution_uuid (16 B), 2 chain_id, 3 iteration,
 *   4 chain_key (32 B), 5 signing_key (33 B) };
 * - SenderKeyMessage (ciphertext type 7): `0x33` ‖ protobuf { 1 distribution_uuid, 2 chain_id, 3 iteration,
 *   4 ciphertext } ‖ 64-byte XEdDSA signature over everything before it.
 *
 * The first byte is (message version << 4) | current version, both 3. All fields are proto2 `optional` and
 * written even when zero; a parser requires every one of them, as libsignal does.
 */
import { BinaryReader, BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { EC_PUBLIC_KEY_BYTES, KEY_TYPE_DJB, SIGNATURE_BYTES } from "../../src/protocol/keys";
import { SenderKeyError } from "./sender-keys-errors";
import { uuidFromBytes, uuidToBytes } from "./sender-keys-uuid";

/** The sender-key message version (libsignal's `SENDERKEY_MESSAGE_CURRENT_VERSION`). */
export const SENDER_KEY_MESSAGE_VERSION = 3;
/** First byte of every sender-key message: version 3 in both nibbles. */
export const SENDER_KEY_VERSION_BYTE = (SENDER_KEY_MESSAGE_VERSION << 4) | SENDER_KEY_MESSAGE_VERSION;
/** Ciphertext message type of a SenderKeyMessage (libsignal's `CiphertextMessageType.SenderKey`). */
export const CIPHERTEXT_TYPE_SENDER_KEY = 7;
/** Length of a sender chain key. */
export const CHAIN_KEY_BYTES = 32;

/** The fields of a SenderKeyDistributionMessage. `distributionId` is a UUID string, `signingKey` a 33-byte public key. */
export interface SenderKeyDistribution {
  distributionId: string;
  chainId: number;
  iteration: number;
  chainKey: Uint8Array;
  signingKey: Uint8Array;
}

/** A parsed SenderKeyMessage: its fields, the signed part (version byte ‖ protobuf) and the 64-byte signature. */
export interface ParsedSenderKeyMessage {
  distributionId: string;
  chainId: number;
  iteration: number;
  ciphertext: Uint8Array;
  signed: Uint8Array;
  signature: Uint8Array;
}

const invalid = (what: string) => new SenderKeyError("invalid-message", what);

function assertUint32(value: number, what: string): void {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) throw new RangeError(`${what} must be a uint32, got ${value}`);
}

/** Serializes a SenderKeyDistributionMessage exactly as libsignal's `SenderKeyDistributionMessage::new`. */
export function encodeSenderKeyDistributionMessage(m: SenderKeyDistribution): Uint8Array<ArrayBuffer> {
  assertUint32(m.chainId, "chain id");
  assertUint32(m.iteration, "iteration");
  if (m.chainKey.length !== CHAIN_KEY_BYTES) throw new RangeError(`chain key must be ${CHAIN_KEY_BYTES} bytes`);
  if (m.signingKey.length !== EC_PUBLIC_KEY_BYTES || m.signingKey[0] !== KEY_TYPE_DJB) {
    throw new RangeError("signing key must be a 33-byte serialized Curve25519 key");
  }
  const w = new BinaryWriter();
  w.raw(Uint8Array.of(SENDER_KEY_VERSION_BYTE));
  w.tag(1, WireType.LengthDelimited).bytes(uuidToBytes(m.distributionId));
  w.tag(2, WireType.Varint).uint32(m.chainId);
  w.tag(3, WireType.Varint).uint32(m.iteration);
  w.tag(4, WireType.LengthDelimited).bytes(m.chainKey);
  w.tag(5, WireType.LengthDelimited).bytes(m.signingKey);
  return w.finish();
}

/** Checks the version byte as libsignal does: high nibble below 3 is legacy, above 3 unrecognized. */
function checkVersion(first: number): void {
  const version = first >> 4;
  if (version < SENDER_KEY_MESSAGE_VERSION) throw new SenderKeyError("legacy-version", `legacy sender-key message version ${version}`);
  if (version > SENDER_KEY_MESSAGE_VERSION) throw new SenderKeyError("unrecognized-version", `unrecognized sender-key message version ${version}`);
}

type Fields = Map<number, number | Uint8Array>;

/** Reads a flat protobuf of uint32 and bytes fields; `kinds` gives each known field's wire type, others are skipped. */
function readFields(bytes: Uint8Array, kinds: Record<number, WireType.Varint | WireType.LengthDelimited>): Fields {
  const fields: Fields = new Map();
  try {
    const r = new BinaryReader(bytes);
    while (r.pos < r.len) {
      const [no, type] = r.tag();
      const kind = kinds[no];
      if (kind === undefined) r.skip(type, no);
      else if (kind !== type) throw invalid(`field ${no} has wire type ${type}`);
      else fields.set(no, type === WireType.Varint ? r.uint32() : r.bytes().slice());
    }
  } catch (e) {
    if (e instanceof SenderKeyError) throw e;
    throw invalid(`invalid protobuf: ${(e as Error).message}`);
  }
  return fields;
}

function required<T extends number | Uint8Array>(fields: Fields, no: number, what: string): T {
  const value = fields.get(no);
  if (value === undefined) throw invalid(`missing ${what}`);
  return value as T;
}

function distributionIdField(fields: Fields): string {
  const id = required<Uint8Array>(fields, 1, "distribution id");
  if (id.length !== 16) throw invalid("distribution id must be 16 bytes");
  return uuidFromBytes(id);
}

const V = WireType.Varint;
const LD = WireType.LengthDelimited;

/**
 * Parses a SenderKeyDistributionMessage as libsignal does; throws {@link SenderKeyError} (`invalid-message`,
 * `legacy-version`, `unrecognized-version`) on anything it would refuse.
 */
export function parseSenderKeyDistributionMessage(bytes: Uint8Array): SenderKeyDistribution {
  if (!(bytes instanceof Uint8Array) || bytes.length < 1 + 32 + 32) throw invalid("sender key distribution message too short");
  checkVersion(bytes[0]!);
  const f = readFields(bytes.subarray(1), { 1: LD, 2: V, 3: V, 4: LD, 5: LD });
  const distributionId = distributionIdField(f);
  const chainId = required<number>(f, 2, "chain id");
  const iteration = required<number>(f, 3, "iteration");
  const chainKey = required<Uint8Array>(f, 4, "chain key");
  const signingKey = required<Uint8Array>(f, 5, "signing key");
  if (chainKey.length !== CHAIN_KEY_BYTES || signingKey.length !== EC_PUBLIC_KEY_BYTES) throw invalid("bad chain key or signing key length");
  if (signingKey[0] !== KEY_TYPE_DJB) throw invalid("signing key is not a Curve25519 key");
  return { distributionId, chainId, iteration, chainKey, signingKey };
}

/** The signed part of a SenderKeyMessage (`0x33` ‖ protobuf), as libsignal's `SenderKeyMessage::new` lays it out. */
export function encodeSenderKeyMessageBody(m: {
  distributionId: string;
  chainId: number;
  iteration: number;
  ciphertext: Uint8Array;
}): Uint8Array<ArrayBuffer> {
  assertUint32(m.chainId, "chain id");
  assertUint32(m.iteration, "iteration");
  const w = new BinaryWriter();
  w.raw(Uint8Array.of(SENDER_KEY_VERSION_BYTE));
  w.tag(1, LD).bytes(uuidToBytes(m.distributionId));
  w.tag(2, V).uint32(m.chainId);
  w.tag(3, V).uint32(m.iteration);
  w.tag(4, LD).bytes(m.ciphertext);
  return w.finish();
}

/**
 * Parses a SenderKeyMessage (without checking its signature) as libsignal does; throws {@link SenderKeyError}
 * (`invalid-message`, `legacy-version`, `unrecognized-version`) on anything it would refuse.
 */
export function parseSenderKeyMessage(bytes: Uint8Array): ParsedSenderKeyMessage {
  if (!(bytes instanceof Uint8Array) || bytes.length < 1 + SIGNATURE_BYTES) throw invalid("sender key message too short");
  checkVersion(bytes[0]!);
  const end = bytes.length - SIGNATURE_BYTES;
  const f = readFields(bytes.subarray(1, end), { 1: LD, 2: V, 3: V, 4: LD });
  return {
    distributionId: distributionIdField(f),
    chainId: required<number>(f, 2, "chain id"),
    iteration: required<number>(f, 3, "iteration"),
    ciphertext: required<Uint8Array>(f, 4, "ciphertext"),
    signed: bytes.slice(0, end),
    signature: bytes.slice(end),
  };
}
