/**
 * SignalMessage (ciphertext type 2) and PreKeySignalMessage (type 3) in libsignal's wire format:
 * a version byte `0x44` (version 4 in both nibbles) then a protobuf (fields written in field-number
 * order, as libsignal's prost does); a SignalMessage ends with an 8-byte MAC, the first 8 bytes of
 * HMAC-SHA256(mac key, sender identity (33) ‖ receiver identity (33) ‖ version byte ‖ protobuf).
 * Decoding refuses anything malformed with an {@link InvalidMessageError} that says what is wrong.
 */
import { BinaryReader, BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { EC_PUBLIC_KEY_BYTES, KEY_TYPE_DJB } from "../../src/protocol/keys";
import { bytesEqual, concatBytes, copyBytes } from "./bytes";
import { InvalidMessageError } from "./errors";
import { hmacSha256 } from "./kdf";
import { KYBER1024_CIPHERTEXT_BYTES } from "./kem";

/** The protocol version these messages carry (PQXDH + SPQR). */
export const MESSAGE_VERSION = 4;
/** First byte of every message: `(version << 4) | current version` = 0x44. */
export const VERSION_BYTE = (MESSAGE_VERSION << 4) | MESSAGE_VERSION;
/** Length of the truncated MAC that ends a SignalMessage. */
export const MAC_BYTES = 8;
/** Ciphertext type of a SignalMessage (libsignal's `CiphertextMessageType.Whisper`). */
export const SIGNAL_MESSAGE_TYPE = 2;
/** Ciphertext type of a PreKeySignalMessage (libsignal's `CiphertextMessageType.PreKey`). */
export const PREKEY_SIGNAL_MESSAGE_TYPE = 3;

/** An encrypted 1:1 message as the transport carries it. */
export interface CiphertextMessage {
  type: typeof SIGNAL_MESSAGE_TYPE | typeof PREKEY_SIGNAL_MESSAGE_TYPE;
  body: Uint8Array;
}

/** The fields of a SignalMessage. */
export interface SignalMessageFields {
  /** Sender's current ratchet public key (33 bytes). */
  ratchetKey: Uint8Array;
  /** Index of the message in the sender's current chain. */
  counter: number;
  /** Length of the sender's previous chain, minus one (0 when it had none). */
  previousCounter: number;
  /** AES-256-CBC ciphertext of the plaintext. */
  ciphertext: Uint8Array;
  /** The SPQR message (`0x01` ‖ epoch ‖ index ‖ payload); libsignal 0.103 refuses it empty. */
  pqRatchet: Uint8Array;
  /** libsignal's sender/recipient binding (36 bytes), when present. */
  addresses?: Uint8Array;
}

/** A decoded SignalMessage with its exact bytes (the MAC covers all but the last 8). */
export interface DecodedSignalMessage extends SignalMessageFields {
  serialized: Uint8Array;
}

/** The fields of a PreKeySignalMessage. */
export interface PreKeySignalMessageFields {
  registrationId: number;
  preKeyId?: number;
  signedPreKeyId: number;
  kyberPreKeyId: number;
  /** Serialized Kyber1024 ciphertext (1569 bytes). */
  kyberCiphertext: Uint8Array;
  /** The initiator's PQXDH base key (33 bytes). */
  baseKey: Uint8Array;
  /** The initiator's identity key (33 bytes). */
  identityKey: Uint8Array;
  /** The serialized inner SignalMessage. */
  message: Uint8Array;
}

/** A decoded PreKeySignalMessage, its inner SignalMessage decoded too. */
export interface DecodedPreKeySignalMessage extends Omit<PreKeySignalMessageFields, "message"> {
  message: DecodedSignalMessage;
  serialized: Uint8Array;
}

function checkVersion(byte: number | undefined, what: string): void {
  if (byte === undefined) throw new InvalidMessageError(`${what} is empty`);
  const version = byte >> 4;
  if (version < 3) throw new InvalidMessageError(`${what} has legacy version ${version}`);
  if (version === 3) throw new InvalidMessageError(`${what} has version 3 (X3DH, no longer supported)`);
  if (byte !== VERSION_BYTE) throw new InvalidMessageError(`${what} has unsupported version byte 0x${byte.toString(16).padStart(2, "0")}`);
}

function checkKey(bytes: Uint8Array, what: string): Uint8Array {
  if (bytes.length !== EC_PUBLIC_KEY_BYTES || bytes[0] !== KEY_TYPE_DJB) {
    throw new InvalidMessageError(`${what} must be a 33-byte key starting with 0x05`);
  }
  return bytes;
}

/** Reads every field of a protobuf, calling `field` for known ones (which must have the expected wire type). */
function readFields(bytes: Uint8Array, what: string, field: (no: number, wire: WireType, reader: BinaryReader) => boolean): void {
  const reader = new BinaryReader(bytes);
  try {
    while (reader.pos < reader.len) {
      const [no, wire] = reader.tag();
      if (!field(no, wire, reader)) reader.skip(wire, no);
    }
  } catch (error) {
    if (error instanceof InvalidMessageError) throw error;
    throw new InvalidMessageError(`${what}: invalid protobuf encoding (${(error as Error).message})`);
  }
}

function expectWire(actual: WireType, expected: WireType, what: string): void {
  if (actual !== expected) throw new InvalidMessageError(`${what} has the wrong protobuf wire type`);
}

/** The 8-byte MAC of a SignalMessage: HMAC-SHA256(mac key, sender identity ‖ receiver identity ‖ content)[0..8]. */
export function signalMessageMac(macKey: Uint8Array, senderIdentityKey: Uint8Array, receiverIdentityKey: Uint8Array, content: Uint8Array): Uint8Array {
  if (macKey.length !== 32) throw new RangeError(`MAC key must be 32 bytes, got ${macKey.length}`);
  return hmacSha256(macKey, concatBytes(senderIdentityKey, receiverIdentityKey, content)).slice(0, MAC_BYTES);
}

/** Serializes a SignalMessage and appends its MAC. Identity keys are the 33-byte serialized ones. */
export function encodeSignalMessage(fields: SignalMessageFields, macKey: Uint8Array, senderIdentityKey: Uint8Array, receiverIdentityKey: Uint8Array): Uint8Array {
  const writer = new BinaryWriter();
  writer.raw(Uint8Array.of(VERSION_BYTE));
  writer.tag(1, WireType.LengthDelimited).bytes(fields.ratchetKey);
  writer.tag(2, WireType.Varint).uint32(fields.counter);
  writer.tag(3, WireType.Varint).uint32(fields.previousCounter);
  writer.tag(4, WireType.LengthDelimited).bytes(fields.ciphertext);
  if (fields.pqRatchet.length > 0) writer.tag(5, WireType.LengthDelimited).bytes(fields.pqRatchet);
  if (fields.addresses) writer.tag(6, WireType.LengthDelimited).bytes(fields.addresses);
  const content = writer.finish();
  return concatBytes(content, signalMessageMac(macKey, senderIdentityKey, receiverIdentityKey, content));
}

/** Parses a serialized SignalMessage (the MAC is checked later, once the keys are known). */
export function decodeSignalMessage(bytes: Uint8Array): DecodedSignalMessage {
  if (!(bytes instanceof Uint8Array)) throw new InvalidMessageError("SignalMessage must be bytes");
  if (bytes.length < MAC_BYTES + 1) throw new InvalidMessageError(`SignalMessage too short (${bytes.length} bytes)`);
  checkVersion(bytes[0], "SignalMessage");
  let ratchetKey: Uint8Array | undefined;
  let counter: number | undefined;
  let previousCounter = 0;
  let ciphertext: Uint8Array | undefined;
  let pqRatchet = new Uint8Array(0);
  let addresses: Uint8Array | undefined;
  readFields(bytes.subarray(1, bytes.length - MAC_BYTES), "SignalMessage", (no, wire, r) => {
    const bytesField = () => (expectWire(wire, WireType.LengthDelimited, `SignalMessage field ${no}`), copyBytes(r.bytes()));
    const varint = () => (expectWire(wire, WireType.Varint, `SignalMessage field ${no}`), r.uint32());
    switch (no) {
      case 1: ratchetKey = bytesField(); return true;
      case 2: counter = varint(); return true;
      case 3: previousCounter = varint(); return true;
      case 4: ciphertext = bytesField(); return true;
      case 5: pqRatchet = bytesField(); return true;
      case 6: addresses = bytesField(); return true;
      default: return false;
    }
  });
  if (!ratchetKey) throw new InvalidMessageError("SignalMessage has no ratchet key");
  if (counter === undefined) throw new InvalidMessageError("SignalMessage has no counter");
  if (!ciphertext) throw new InvalidMessageError("SignalMessage has no ciphertext");
  return {
    ratchetKey: checkKey(ratchetKey, "SignalMessage ratchet key"),
    counter,
    previousCounter,
    ciphertext,
    pqRatchet,
    ...(addresses ? { addresses } : {}),
    serialized: copyBytes(bytes),
  };
}

/** Checks a decoded SignalMessage's MAC in constant time. */
export function verifySignalMessageMac(message: DecodedSignalMessage, macKey: Uint8Array, senderIdentityKey: Uint8Array, receiverIdentityKey: Uint8Array): boolean {
  const content = message.serialized.subarray(0, message.serialized.length - MAC_BYTES);
  const theirs = message.serialized.subarray(message.serialized.length - MAC_BYTES);
  return bytesEqual(signalMessageMac(macKey, senderIdentityKey, receiverIdentityKey, content), theirs);
}

/** Serializes a PreKeySignalMessage around an already serialized SignalMessage. */
export function encodePreKeySignalMessage(fields: PreKeySignalMessageFields): Uint8Array {
  const writer = new BinaryWriter();
  writer.raw(Uint8Array.of(VERSION_BYTE));
  if (fields.preKeyId !== undefined) writer.tag(1, WireType.Varint).uint32(fields.preKeyId);
  writer.tag(2, WireType.LengthDelimited).bytes(fields.baseKey);
  writer.tag(3, WireType.LengthDelimited).bytes(fields.identityKey);
  writer.tag(4, WireType.LengthDelimited).bytes(fields.message);
  writer.tag(5, WireType.Varint).uint32(fields.registrationId);
  writer.tag(6, WireType.Varint).uint32(fields.signedPreKeyId);
  writer.tag(7, WireType.Varint).uint32(fields.kyberPreKeyId);
  writer.tag(8, WireType.LengthDelimited).bytes(fields.kyberCiphertext);
  return writer.finish();
}

/** Parses a serialized PreKeySignalMessage and its inner SignalMessage. */
export function decodePreKeySignalMessage(bytes: Uint8Array): DecodedPreKeySignalMessage {
  if (!(bytes instanceof Uint8Array)) throw new InvalidMessageError("PreKeySignalMessage must be bytes");
  checkVersion(bytes[0], "PreKeySignalMessage");
  let registrationId = 0;
  let preKeyId: number | undefined;
  let signedPreKeyId: number | undefined;
  let kyberPreKeyId: number | undefined;
  let kyberCiphertext: Uint8Array | undefined;
  let baseKey: Uint8Array | undefined;
  let identityKey: Uint8Array | undefined;
  let message: Uint8Array | undefined;
  readFields(bytes.subarray(1), "PreKeySignalMessage", (no, wire, r) => {
    const bytesField = () => (expectWire(wire, WireType.LengthDelimited, `PreKeySignalMessage field ${no}`), copyBytes(r.bytes()));
    const varint = () => (expectWire(wire, WireType.Varint, `PreKeySignalMessage field ${no}`), r.uint32());
    switch (no) {
      case 1: preKeyId = varint(); return true;
      case 2: baseKey = bytesField(); return true;
      case 3: identityKey = bytesField(); return true;
      case 4: message = bytesField(); return true;
      case 5: registrationId = varint(); return true;
      case 6: signedPreKeyId = varint(); return true;
      case 7: kyberPreKeyId = varint(); return true;
      case 8: kyberCiphertext = bytesField(); return true;
      default: return false;
    }
  });
  if (!baseKey) throw new InvalidMessageError("PreKeySignalMessage has no base key");
  if (!identityKey) throw new InvalidMessageError("PreKeySignalMessage has no identity key");
  if (!message) throw new InvalidMessageError("PreKeySignalMessage has no inner message");
  if (signedPreKeyId === undefined) throw new InvalidMessageError("PreKeySignalMessage has no signed prekey id");
  if (kyberPreKeyId === undefined && kyberCiphertext === undefined) throw new InvalidMessageError("PreKeySignalMessage has no Kyber prekey (required for version 4)");
  if (kyberPreKeyId === undefined || kyberCiphertext === undefined) throw new InvalidMessageError("PreKeySignalMessage must carry both or neither Kyber prekey id and ciphertext");
  if (kyberCiphertext.length !== KYBER1024_CIPHERTEXT_BYTES || kyberCiphertext[0] !== 0x08) {
    throw new InvalidMessageError(`PreKeySignalMessage Kyber ciphertext must be ${KYBER1024_CIPHERTEXT_BYTES} bytes starting with 0x08`);
  }
  return {
    registrationId,
    ...(preKeyId !== undefined ? { preKeyId } : {}),
    signedPreKeyId,
    kyberPreKeyId,
    kyberCiphertext,
    baseKey: checkKey(baseKey, "PreKeySignalMessage base key"),
    identityKey: checkKey(identityKey, "PreKeySignalMessage identity key"),
    message: decodeSignalMessage(message),
    serialized: copyBytes(bytes),
  };
}
