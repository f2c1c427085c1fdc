/**
 * All session states with one address: the current one and up to {@link ARCHIVED_STATES_MAX_LENGTH}
 * previous ones (newest first), as libsignal's SessionRecord keeps them for simultaneous initiation and
 * messages still in flight on an older session. Serialized as versioned JSON (UTF-8 bytes, keys base64)
 * so any key-value store can hold it; {@link SessionRecord.deserialize} checks every field.
 */
import { fromBase64, toBase64 } from "../../src/protocol/base64";
import { bytesEqual } from "./bytes";
import { InvalidSessionError } from "./errors";
import { ARCHIVED_STATES_MAX_LENGTH } from "./limits";
import type { SessionState } from "./session-state";

/** Format version of the serialized record. */
export const SESSION_RECORD_FORMAT = 1;

/** Every session state with one address; the ratchet works on these, the store keeps {@link serialize}'s bytes. */
export class SessionRecord {
  constructor(
    public current: SessionState | undefined = undefined,
    public previous: SessionState[] = [],
  ) {}

  /** Makes `state` current, archiving the current state (without its pending prekey, as libsignal does). */
  promoteState(state: SessionState): void {
    if (this.current) {
      delete this.current.pending;
      this.previous.unshift(this.current);
      if (this.previous.length > ARCHIVED_STATES_MAX_LENGTH) this.previous.length = ARCHIVED_STATES_MAX_LENGTH;
    }
    this.current = state;
  }

  /** If a state was set up by the handshake with `baseKey`, makes it current and returns true. */
  promoteMatchingSession(version: number, baseKey: Uint8Array): boolean {
    if (this.current && this.current.version === version && bytesEqual(this.current.aliceBaseKey, baseKey)) return true;
    const at = this.previous.findIndex((s) => s.version === version && bytesEqual(s.aliceBaseKey, baseKey));
    if (at < 0) return false;
    const [state] = this.previous.splice(at, 1);
    this.promoteState(state!);
    return true;
  }

  /** Replaces previous state `index` by its updated copy and makes that current. */
  promotePrevious(index: number, updated: SessionState): void {
    this.previous.splice(index, 1);
    this.promoteState(updated);
  }

  /** UTF-8 JSON bytes of the record (format {@link SESSION_RECORD_FORMAT}). */
  serialize(): Uint8Array {
    const json = { format: SESSION_RECORD_FORMAT, current: this.current ? stateToJson(this.current) : null, previous: this.previous.map(stateToJson) };
    return new TextEncoder().encode(JSON.stringify(json));
  }

  /** Reads {@link serialize}'s bytes; throws {@link InvalidSessionError} on anything else. */
  static deserialize(bytes: Uint8Array): SessionRecord {
    let json: unknown;
    try {
      json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
    } catch {
      throw new InvalidSessionError("not JSON");
    }
    const record = object(json, "record");
    if (record.format !== SESSION_RECORD_FORMAT) throw new InvalidSessionError(`unknown format ${String(record.format)}`);
    const previous = record.previous;
    if (!Array.isArray(previous) || previous.length > ARCHIVED_STATES_MAX_LENGTH) throw new InvalidSessionError("previous must be a short array");
    return new SessionRecord(record.current === null ? undefined : stateFromJson(record.current, "current"), previous.map((s, i) => stateFromJson(s, `previous[${i}]`)));
  }
}

// --- JSON mapping --------------------------------------------------------------------------------

type Json = Record<string, unknown>;

function object(value: unknown, path: string): Json {
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new InvalidSessionError(`${path} must be an object`);
  return value as Json;
}

function bytes(value: unknown, path: string, length?: number): Uint8Array {
  if (typeof value !== "string") throw new InvalidSessionError(`${path} must be base64`);
  let out: Uint8Array;
  try {
    out = fromBase64(value);
  } catch {
    throw new InvalidSessionError(`${path} must be base64`);
  }
  if (length !== undefined && out.length !== length) throw new InvalidSessionError(`${path} must be ${length} bytes`);
  return out;
}

function uint(value: unknown, path: string): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) throw new InvalidSessionError(`${path} must be a non-negative integer`);
  return value;
}

function array(value: unknown, path: string): unknown[] {
  if (!Array.isArray(value)) throw new InvalidSessionError(`${path} must be an array`);
  return value;
}

function stateToJson(s: SessionState): Json {
  const b = toBase64;
  return {
    version: s.version,
    localIdentityKey: b(s.localIdentityKey),
    remoteIdentityKey: b(s.remoteIdentityKey),
    localRegistrationId: s.localRegistrationId,
    remoteRegistrationId: s.remoteRegistrationId,
    aliceBaseKey: b(s.aliceBaseKey),
    selfSession: s.selfSession,
    rootKey: b(s.rootKey),
    previousCounter: s.previousCounter,
    sender: {
      publicKey: b(s.sender.ratchetKey.publicKey),
      privateKey: b(s.sender.ratchetKey.privateKey),
      chainKey: b(s.sender.chainKey.key),
      index: s.sender.chainKey.index,
    },
    receivers: s.receivers.map((c) => ({
      ratchetKey: b(c.ratchetKey),
      chainKey: b(c.chainKey.key),
      index: c.chainKey.index,
      skipped: c.skipped.map((k) => [k.index, b(k.seed)]),
    })),
    ...(s.pending
      ? {
          pending: {
            ...(s.pending.preKeyId !== undefined ? { preKeyId: s.pending.preKeyId } : {}),
            signedPreKeyId: s.pending.signedPreKeyId,
            kyberPreKeyId: s.pending.kyberPreKeyId,
            kyberCiphertext: b(s.pending.kyberCiphertext),
            baseKey: b(s.pending.baseKey),
            createdAt: s.pending.createdAt,
          },
        }
      : {}),
    spqr: {
      direction: s.spqr.direction,
      maxJump: s.spqr.maxJump,
      sendCtr: s.spqr.send.ctr,
      sendNext: b(s.spqr.send.next),
      recvCtr: s.spqr.recv.ctr,
      recvNext: b(s.spqr.recv.next),
      held: s.spqr.recv.held.map((k) => [k.index, b(k.key)]),
    },
  };
}

function indexedKeys(value: unknown, path: string): { index: number; key: Uint8Array }[] {
  return array(value, path).map((entry, i) => {
    const pair = array(entry, `${path}[${i}]`);
    if (pair.length !== 2) throw new InvalidSessionError(`${path}[${i}] must be [index, key]`);
    return { index: uint(pair[0], `${path}[${i}][0]`), key: bytes(pair[1], `${path}[${i}][1]`, 32) };
  });
}

function stateFromJson(value: unknown, path: string): SessionState {
  const s = object(value, path);
  const sender = object(s.sender, `${path}.sender`);
  const spqr = object(s.spqr, `${path}.spqr`);
  if (s.version !== 4) throw new InvalidSessionError(`${path}.version must be 4`);
  if (typeof s.selfSession !== "boolean") throw new InvalidSessionError(`${path}.selfSession must be a boolean`);
  if (spqr.direction !== "A2B" && spqr.direction !== "B2A") throw new InvalidSessionError(`${path}.spqr.direction must be A2B or B2A`);
  const state: SessionState = {
    version: 4,
    localIdentityKey: bytes(s.localIdentityKey, `${path}.localIdentityKey`, 33),
    remoteIdentityKey: bytes(s.remoteIdentityKey, `${path}.remoteIdentityKey`, 33),
    localRegistrationId: uint(s.localRegistrationId, `${path}.localRegistrationId`),
    remoteRegistrationId: uint(s.remoteRegistrationId, `${path}.remoteRegistrationId`),
    aliceBaseKey: bytes(s.aliceBaseKey, `${path}.aliceBaseKey`, 33),
    selfSession: s.selfSession,
    rootKey: bytes(s.rootKey, `${path}.rootKey`, 32),
    previousCounter: uint(s.previousCounter, `${path}.previousCounter`),
    sender: {
      ratchetKey: { publicKey: bytes(sender.publicKey, `${path}.sender.publicKey`, 33), privateKey: bytes(sender.privateKey, `${path}.sender.privateKey`, 32) },
      chainKey: { key: bytes(sender.chainKey, `${path}.sender.chainKey`, 32), index: uint(sender.index, `${path}.sender.index`) },
    },
    receivers: array(s.receivers, `${path}.receivers`).map((c, i) => {
      const chain = object(c, `${path}.receivers[${i}]`);
      return {
        ratchetKey: bytes(chain.ratchetKey, `${path}.receivers[${i}].ratchetKey`, 33),
        chainKey: { key: bytes(chain.chainKey, `${path}.receivers[${i}].chainKey`, 32), index: uint(chain.index, `${path}.receivers[${i}].index`) },
        skipped: indexedKeys(chain.skipped, `${path}.receivers[${i}].skipped`).map(({ index, key }) => ({ index, seed: key })),
      };
    }),
    spqr: {
      direction: spqr.direction,
      maxJump: uint(spqr.maxJump, `${path}.spqr.maxJump`),
      send: { ctr: uint(spqr.sendCtr, `${path}.spqr.sendCtr`), next: bytes(spqr.sendNext, `${path}.spqr.sendNext`, 32) },
      recv: { ctr: uint(spqr.recvCtr, `${path}.spqr.recvCtr`), next: bytes(spqr.recvNext, `${path}.spqr.recvNext`, 32), held: indexedKeys(spqr.held, `${path}.spqr.held`) },
    },
  };
  if (s.pending !== undefined) {
    const p = object(s.pending, `${path}.pending`);
    state.pending = {
      ...(p.preKeyId !== undefined ? { preKeyId: uint(p.preKeyId, `${path}.pending.preKeyId`) } : {}),
      signedPreKeyId: uint(p.signedPreKeyId, `${path}.pending.signedPreKeyId`),
      kyberPreKeyId: uint(p.kyberPreKeyId, `${path}.pending.kyberPreKeyId`),
      kyberCiphertext: bytes(p.kyberCiphertext, `${path}.pending.kyberCiphertext`, 1569),
      baseKey: bytes(p.baseKey, `${path}.pending.baseKey`, 33),
      createdAt: uint(p.createdAt, `${path}.pending.createdAt`),
    };
  }
  return state;
}
