/**
 * The symmetric half of SPQR (Signal's Sparse Post-Quantum Ratchet), as far as Relay runs it: the
 * key chain of epoch 0, seeded by PQXDH's SPQR authentication key, whose per-message keys salt the
 * Double Ratchet's message-key HKDF. Every message we send carries a `None` payload at SPQR epoch 1
 * (chain epoch 0); chunks the peer sends (libsignal's initiator sends its ML-KEM-768 header and key in
 * chunks) are parsed and ignored, so neither side ever reaches epoch 2.
 *
 * What this gives: every message key also depends on the PQXDH-derived (Kyber-protected) SPQR key and
 * on the message's position in the SPQR chain. What it does not give: post-quantum healing. Without
 * the braid (incremental ML-KEM-768 exchanges that open new epochs), a quantum attacker who recovers
 * the PQXDH secrets or a state snapshot can follow the SPQR chain forward; the classical DH ratchet
 * still heals against classical attackers.
 *
 * Facts from libsignal's spqr crate (v1.5.x): message = `0x01` ‖ varint epoch ‖ varint index ‖ type
 * [‖ varint chunk index ‖ 32-byte chunk], trailing bytes allowed; chain start = HKDF(salt 0³², ikm =
 * auth key, info `Signal PQ Ratchet V1 Chain  Start`) → next root ‖ A→B ‖ B→A; each key = HKDF(salt
 * 0³², ikm = chain, info = BE32(counter) ‖ `Signal PQ Ratchet V1 Chain Next`) → next chain ‖ key,
 * counters starting at 1; receive limits max_jump 25,000 (unlimited with oneself) and 2,000
 * out-of-order keys kept, trimmed once 2,201 are held.
 */
import { hkdf } from "@noble/hashes/hkdf.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { concatBytes, label, u32be } from "./bytes";
import { InvalidMessageError } from "./errors";

/** SPQR protocol version byte of every message we send and accept. */
export const SPQR_VERSION = 1;
/** The only SPQR epoch Relay runs (messages carry it; keys come from chain epoch `SPQR_EPOCH - 1`). */
export const SPQR_EPOCH = 1;
/** Out-of-order SPQR keys kept per chain (libsignal: MAX_MESSAGE_KEYS). */
export const SPQR_MAX_OOO_KEYS = 2000;
/** Largest forward jump in the SPQR chain (libsignal: MAX_FORWARD_JUMPS; unlimited with oneself). */
export const SPQR_MAX_JUMP = 25_000;
/** Jump limit of a session with one's own account (u32::MAX in libsignal). */
export const SPQR_SELF_MAX_JUMP = 0xffff_ffff;

const ZERO_SALT = new Uint8Array(32);
const START_INFO = label("Signal PQ Ratchet V1 Chain  Start");
const NEXT_INFO = label("Signal PQ Ratchet V1 Chain Next");
const TRIM_SIZE = Math.floor((SPQR_MAX_OOO_KEYS * 11) / 10) + 1;
/** Payload types of SPQR v1 messages; those with a chunk carry varint index ‖ 32 bytes. */
const PAYLOAD_HAS_CHUNK = [false, true, true, true, false, true, true]; // None, Hdr, Ek, EkCt1Ack, Ct1Ack, Ct1, Ct2

/** Who started the session: the PQXDH initiator sends on the A→B chain. */
export type SpqrDirection = "A2B" | "B2A";

/** A held out-of-order key of the receiving chain. */
export interface SpqrHeldKey {
  index: number;
  key: Uint8Array;
}

/** SPQR state of one session: epoch-0 sending and receiving chains. */
export interface SpqrState {
  direction: SpqrDirection;
  maxJump: number;
  send: { ctr: number; next: Uint8Array };
  recv: { ctr: number; next: Uint8Array; held: SpqrHeldKey[] };
}

/** The initial SPQR state for one side, from PQXDH's 32-byte SPQR authentication key. */
export function spqrInitialState(authKey: Uint8Array, direction: SpqrDirection, selfSession: boolean): SpqrState {
  const okm = hkdf(sha256, authKey, ZERO_SALT, START_INFO, 96);
  const a2b = okm.slice(32, 64);
  const b2a = okm.slice(64, 96);
  return {
    direction,
    maxJump: selfSession ? SPQR_SELF_MAX_JUMP : SPQR_MAX_JUMP,
    send: { ctr: 0, next: direction === "A2B" ? a2b : b2a },
    recv: { ctr: 0, next: direction === "A2B" ? b2a : a2b, held: [] },
  };
}

/** One chain step: counter + 1, then (next chain, key) = HKDF(0³², chain, BE32(counter) ‖ label). */
function step(chain: { ctr: number; next: Uint8Array }): Uint8Array {
  chain.ctr += 1;
  const okm = hkdf(sha256, chain.next, ZERO_SALT, concatBytes(u32be(chain.ctr), NEXT_INFO), 64);
  chain.next = okm.slice(0, 32);
  return okm.slice(32, 64);
}

function encodeVarint(value: number): number[] {
  const out: number[] = [];
  while (value > 0x7f) {
    out.push((value % 0x80) | 0x80);
    value = Math.floor(value / 0x80);
  }
  out.push(value);
  return out;
}

/**
 * Produces the next outgoing SPQR message (`None` payload at epoch 1) and its message key; advances
 * `state` in place.
 */
export function spqrSend(state: SpqrState): { message: Uint8Array; key: Uint8Array } {
  const key = step(state.send);
  const message = Uint8Array.from([SPQR_VERSION, ...encodeVarint(SPQR_EPOCH), ...encodeVarint(state.send.ctr), 0]);
  return { message, key };
}

/** A parsed SPQR message header: what Relay needs of it (its payload is validated, then ignored). */
export interface SpqrHeader {
  epoch: bigint;
  index: number;
  payloadType: number;
}

function decodeVarint(bytes: Uint8Array, at: { pos: number }): bigint {
  let out = 0n;
  for (let i = 0; i < 10 && at.pos < bytes.length; i++) {
    const byte = bytes[at.pos++]!;
    out |= BigInt(byte & 0x7f) << BigInt(7 * i);
    if ((byte & 0x80) === 0) return out & 0xffff_ffff_ffff_ffffn;
  }
  throw new InvalidMessageError("post-quantum ratchet error: message decode failed");
}

/** Parses an SPQR v1 message as libsignal's spqr crate does; throws {@link InvalidMessageError} when malformed. */
export function parseSpqrMessage(message: Uint8Array): SpqrHeader {
  const fail = (why: string) => new InvalidMessageError(`post-quantum ratchet error: ${why}`);
  if (message.length === 0) throw fail("Minimum version (an empty pq_ratchet means the peer has no SPQR)");
  if (message[0] !== SPQR_VERSION) throw fail(`unsupported SPQR version ${message[0]}`);
  const at = { pos: 1 };
  const epoch = decodeVarint(message, at);
  if (epoch === 0n) throw fail("message decode failed (epoch 0)");
  const index = decodeVarint(message, at);
  if (index > 0xffff_ffffn) throw fail("message decode failed (index out of range)");
  if (at.pos >= message.length) throw fail("message decode failed (no payload type)");
  const payloadType = message[at.pos++]!;
  if (payloadType >= PAYLOAD_HAS_CHUNK.length) throw fail(`message decode failed (payload type ${payloadType})`);
  if (PAYLOAD_HAS_CHUNK[payloadType]) {
    const chunkIndex = decodeVarint(message, at);
    if (chunkIndex > 65535n || at.pos + 32 > message.length) throw fail("message decode failed (truncated chunk)");
  }
  return { epoch, index: Number(index), payloadType };
}

/**
 * The message key for an incoming SPQR message; advances `state.recv` in place (keeping skipped keys
 * for out-of-order arrival), so callers work on a copy and commit it only once the message authenticates.
 * Throws {@link InvalidMessageError} for a malformed message, an epoch other than 1 (only reachable
 * with the full braid), index 0, a jump past the limit, or a key already used or trimmed.
 */
export function spqrRecv(state: SpqrState, message: Uint8Array): Uint8Array {
  const { epoch, index } = parseSpqrMessage(message);
  const fail = (why: string) => new InvalidMessageError(`post-quantum ratchet error: ${why}`);
  if (epoch !== BigInt(SPQR_EPOCH)) throw fail(`epoch not in valid range: ${epoch}`);
  // libsignal derives no key for (epoch 1, index 0), a form only a version-0 downgrade produces; since
  // both sides require version 1, we refuse it rather than decrypt without the SPQR salt.
  if (index === 0) throw fail("index 0 (no post-quantum key) refused");
  const recv = state.recv;
  if (index === recv.ctr) throw fail(`Key already requested: ${index}`);
  if (index < recv.ctr) {
    if (index + SPQR_MAX_OOO_KEYS < recv.ctr) throw fail(`Key trimmed: ${index}`);
    const at = recv.held.findIndex((k) => k.index === index);
    if (at < 0) throw fail(`Key already requested: ${index}`);
    return recv.held.splice(at, 1)[0]!.key;
  }
  if (index - recv.ctr > state.maxJump) throw fail(`Key jump: ${recv.ctr} - ${index}`);
  if (index > recv.ctr + SPQR_MAX_OOO_KEYS) recv.held = []; // every held key is about to become too old
  while (index > recv.ctr + 1) {
    const key = step(recv);
    if (recv.ctr + SPQR_MAX_OOO_KEYS >= index) recv.held.push({ index: recv.ctr, key });
  }
  if (recv.held.length >= TRIM_SIZE) {
    const horizon = recv.ctr - SPQR_MAX_OOO_KEYS;
    recv.held = recv.held.filter((k) => k.index >= horizon);
  }
  return step(recv);
}
