/**
 * What a device remembers per (sender, distribution id): libsignal's `SenderKeyRecord`, up to five chains
 * (newest first), each with its chain key, signing key (the private half only for our own sending chain) and
 * the message keys kept for late messages. Serialized in libsignal's own storage format
 * (`storage.proto` SenderKeyRecordStructure, proto3), so records survive a store round trip and even load in libsignal.
 */
import { BinaryReader, BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import type { ChainKey } from "./sender-keys-chain";
import { SENDER_KEY_MESSAGE_VERSION } from "./sender-keys-wire";

/** How many chains a record keeps per distribution (libsignal `MAX_SENDER_KEY_STATES`); the oldest goes first. */
export const MAX_SENDER_KEY_STATES = 5;
/** How many skipped message keys a chain keeps for late messages (libsignal `MAX_MESSAGE_KEYS`); the oldest go first. */
export const MAX_MESSAGE_KEYS = 2000;

/** A kept message key: its iteration and 32-byte seed (libsignal's `SenderMessageKey`). */
export interface SenderMessageKey {
  iteration: number;
  seed: Uint8Array;
}

/** One sender chain (libsignal's `SenderKeyStateStructure`). */
export interface SenderKeyState {
  /** Message version of the chain: 3 (0, as stored by the oldest libsignal records, also means 3: see {@link stateVersion}). */
  messageVersion: number;
  /** The chain id (31-bit random when libsignal or we create it). */
  chainId: number;
  /** Current chain key, i.e. the next iteration to send or expect. */
  chainKey: ChainKey | undefined;
  /** The 33-byte public signing key; `privateKey` (32 bytes) only in the sender's own record. */
  signingKey: { publicKey: Uint8Array; privateKey: Uint8Array | undefined } | undefined;
  /** Kept message keys for iterations skipped over, oldest first, at most {@link MAX_MESSAGE_KEYS}. */
  messageKeys: SenderMessageKey[];
}

/** A chain's message version as libsignal reads it: a stored 0 means 3, the first sender-key version. */
export function stateVersion(state: SenderKeyState): number {
  return state.messageVersion === 0 ? SENDER_KEY_MESSAGE_VERSION : state.messageVersion;
}

/** The record's storage format is malformed. */
export class SenderKeyRecordFormatError extends Error {
  override name = "SenderKeyRecordFormatError";
}

const equal = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((x, i) => x === b[i]);

/** libsignal's `SenderKeyRecord`: the chains of one sender for one distribution id, newest first. */
export class SenderKeyRecord {
  /** Chains, newest (the one to send with) first. */
  states: SenderKeyState[];

  /** A record with the given chains (none by default). */
  constructor(states: SenderKeyState[] = []) {
    this.states = states;
  }

  /** The chain with `chainId`, if kept. */
  stateForChainId(chainId: number): SenderKeyState | undefined {
    return this.states.find((s) => s.chainId === chainId);
  }

  /**
   * Adds a chain as libsignal's `add_sender_key_state` does: a chain already kept with the same id and signing key
   * moves to the front unchanged (so re-processing a distribution message never rewinds it: no replays); other
   * chains with that id are dropped; the oldest chains go beyond {@link MAX_SENDER_KEY_STATES}.
   */
  addState(chainId: number, chainKey: ChainKey, signingPublic: Uint8Array, signingPrivate?: Uint8Array): void {
    const index = this.states.findIndex((s) => s.chainId === chainId && s.signingKey !== undefined && equal(s.signingKey.publicKey, signingPublic));
    const existing = index >= 0 ? this.states.splice(index, 1)[0] : undefined;
    this.states = this.states.filter((s) => s.chainId !== chainId);
    const state: SenderKeyState = existing ?? {
      messageVersion: SENDER_KEY_MESSAGE_VERSION,
      chainId,
      chainKey: { iteration: chainKey.iteration, seed: Uint8Array.from(chainKey.seed) },
      signingKey: { publicKey: Uint8Array.from(signingPublic), privateKey: signingPrivate && Uint8Array.from(signingPrivate) },
      messageKeys: [],
    };
    this.states.splice(MAX_SENDER_KEY_STATES - 1);
    this.states.unshift(state);
  }

  /** Serializes the record in libsignal's storage format (byte for byte what libsignal writes for the same state). */
  serialize(): Uint8Array<ArrayBuffer> {
    const w = new BinaryWriter();
    for (const s of this.states) {
      w.tag(1, LD).fork();
      writeState(w, s);
      w.join();
    }
    return w.finish();
  }

  /** Reads a record in libsignal's storage format (ours or libsignal's); throws {@link SenderKeyRecordFormatError}. */
  static deserialize(bytes: Uint8Array): SenderKeyRecord {
    try {
      const states: SenderKeyState[] = [];
      readMessage(bytes, (no, r) => {
        if (no !== 1) return false;
        states.push(readState(r.bytes()));
        return true;
      });
      return new SenderKeyRecord(states);
    } catch (e) {
      if (e instanceof SenderKeyRecordFormatError) throw e;
      throw new SenderKeyRecordFormatError(`malformed sender key record: ${(e as Error).message}`);
    }
  }
}

const V = WireType.Varint;
const LD = WireType.LengthDelimited;

// proto3: zero numbers and empty bytes are left out; present sub-messages are written even when empty.
function writeUint(w: BinaryWriter, no: number, value: number) {
  if (value !== 0) w.tag(no, V).uint32(value);
}
function writeBytes(w: BinaryWriter, no: number, value: Uint8Array | undefined) {
  if (value && value.length > 0) w.tag(no, LD).bytes(value);
}
function writeKey(w: BinaryWriter, no: number, key: { iteration: number; seed: Uint8Array }) {
  w.tag(no, LD).fork();
  writeUint(w, 1, key.iteration);
  writeBytes(w, 2, key.seed);
  w.join();
}

function writeState(w: BinaryWriter, s: SenderKeyState) {
  writeUint(w, 1, s.chainId);
  if (s.chainKey) writeKey(w, 2, s.chainKey);
  if (s.signingKey) {
    w.tag(3, LD).fork();
    writeBytes(w, 1, s.signingKey.publicKey);
    writeBytes(w, 2, s.signingKey.privateKey);
    w.join();
  }
  for (const k of s.messageKeys) writeKey(w, 4, k);
  writeUint(w, 5, s.messageVersion);
}

/** Walks a message's fields; `field` reads the ones it knows (and returns true), the rest are skipped. */
function readMessage(bytes: Uint8Array, field: (no: number, r: BinaryReader, type: WireType) => boolean) {
  const r = new BinaryReader(bytes);
  while (r.pos < r.len) {
    const [no, type] = r.tag();
    if (!field(no, r, type)) r.skip(type, no);
  }
}

const FIELD_TYPES: Record<string, Record<number, WireType>> = {
  state: { 1: V, 2: LD, 3: LD, 4: LD, 5: V },
  key: { 1: V, 2: LD },
  signing: { 1: LD, 2: LD },
};

function checkType(kind: string, no: number, type: WireType): boolean {
  const expected = FIELD_TYPES[kind]![no];
  if (expected === undefined) return false;
  if (expected !== type) throw new SenderKeyRecordFormatError(`${kind} field ${no} has wire type ${type}`);
  return true;
}

function readKey(bytes: Uint8Array): SenderMessageKey {
  const key: SenderMessageKey = { iteration: 0, seed: new Uint8Array(0) };
  readMessage(bytes, (no, r, type) => {
    if (!checkType("key", no, type)) return false;
    if (no === 1) key.iteration = r.uint32();
    else key.seed = r.bytes().slice();
    return true;
  });
  return key;
}

function readState(bytes: Uint8Array): SenderKeyState {
  const s: SenderKeyState = { messageVersion: 0, chainId: 0, chainKey: undefined, signingKey: undefined, messageKeys: [] };
  readMessage(bytes, (no, r, type) => {
    if (!checkType("state", no, type)) return false;
    if (no === 1) s.chainId = r.uint32();
    else if (no === 5) s.messageVersion = r.uint32();
    else if (no === 2) s.chainKey = readKey(r.bytes());
    else if (no === 4) s.messageKeys.push(readKey(r.bytes()));
    else {
      const signing = { publicKey: new Uint8Array(0), privateKey: undefined as Uint8Array | undefined };
      readMessage(r.bytes(), (n, rr, t) => {
        if (!checkType("signing", n, t)) return false;
        const value = rr.bytes().slice();
        if (n === 1) signing.publicKey = value;
        else signing.privateKey = value.length > 0 ? value : undefined;
        return true;
      });
      s.signingKey = signing;
    }
    return true;
  });
  return s;
}
