/**
 * One session state (one PQXDH handshake and the ratchets that follow it) and its two initializations:
 * the initiator's from a bundle, the responder's from a PreKeySignalMessage (libsignal's ratchet.rs).
 */
import { generateKeyPair } from "../../src/protocol/keys";
import { agree, type KeyPair } from "./curve";
import { rootStep } from "./kdf";
import { MESSAGE_VERSION } from "./messages";
import { pqxdhAccept, pqxdhInitiate, type InitiatorInputs, type ResponderInputs } from "./pqxdh";
import { spqrInitialState, type SpqrState } from "./spqr";

/** A chain key and the index of the next message key it yields. */
export interface ChainKey {
  key: Uint8Array;
  index: number;
}

/** A message-key seed kept for a message that has not arrived yet (out-of-order delivery). */
export interface SkippedKey {
  index: number;
  seed: Uint8Array;
}

/** A receiving chain: the peer's ratchet key, its chain key and skipped seeds (oldest first). */
export interface ReceiverChain {
  ratchetKey: Uint8Array;
  chainKey: ChainKey;
  skipped: SkippedKey[];
}

/** What an initiator repeats in every message until the responder answers (the PreKeySignalMessage wrapper). */
export interface PendingPreKey {
  preKeyId?: number;
  signedPreKeyId: number;
  kyberPreKeyId: number;
  kyberCiphertext: Uint8Array;
  baseKey: Uint8Array;
  /** When the session was created (ms since 1970): stale after 30 days without an answer. */
  createdAt: number;
}

/** The full state of one session. Mutated in place by the ratchet; callers work on copies. */
export interface SessionState {
  version: number;
  localIdentityKey: Uint8Array;
  remoteIdentityKey: Uint8Array;
  localRegistrationId: number;
  remoteRegistrationId: number;
  /** The initiator's base key: identifies the handshake (a re-delivered PreKeySignalMessage finds its session by it). */
  aliceBaseKey: Uint8Array;
  /** A session with one's own account (same identity key and user id): no forward-jump limit, as in libsignal. */
  selfSession: boolean;
  rootKey: Uint8Array;
  previousCounter: number;
  sender: { ratchetKey: KeyPair; chainKey: ChainKey };
  /** Newest last, at most MAX_RECEIVER_CHAINS. */
  receivers: ReceiverChain[];
  pending?: PendingPreKey;
  spqr: SpqrState;
}

/** Everything the initiator needs beyond PQXDH's inputs. */
export interface InitiatorSessionInputs extends InitiatorInputs {
  ourRegistrationId: number;
  theirRegistrationId: number;
  preKeyId?: number;
  signedPreKeyId: number;
  kyberPreKeyId: number;
  selfSession: boolean;
  now: number;
}

/**
 * The initiator's new state: PQXDH, then a first sending chain from a fresh ratchet key against the
 * responder's signed prekey, whose chain from PQXDH becomes the first receiving chain.
 */
export async function initializeInitiatorState(inputs: InitiatorSessionInputs, kyberRandom?: Uint8Array): Promise<SessionState> {
  const handshake = await pqxdhInitiate(inputs, kyberRandom);
  const sendingRatchetKey = generateKeyPair();
  const sending = rootStep(handshake.rootKey, await agree(sendingRatchetKey.privateKey, inputs.theirSignedPreKey));
  return {
    version: MESSAGE_VERSION,
    localIdentityKey: inputs.ourIdentity.publicKey,
    remoteIdentityKey: inputs.theirIdentityKey,
    localRegistrationId: inputs.ourRegistrationId,
    remoteRegistrationId: inputs.theirRegistrationId,
    aliceBaseKey: inputs.ourBaseKey.publicKey,
    selfSession: inputs.selfSession,
    rootKey: sending.rootKey,
    previousCounter: 0,
    sender: { ratchetKey: sendingRatchetKey, chainKey: { key: sending.chainKey, index: 0 } },
    receivers: [{ ratchetKey: inputs.theirSignedPreKey, chainKey: { key: handshake.chainKey, index: 0 }, skipped: [] }],
    pending: {
      ...(inputs.preKeyId !== undefined ? { preKeyId: inputs.preKeyId } : {}),
      signedPreKeyId: inputs.signedPreKeyId,
      kyberPreKeyId: inputs.kyberPreKeyId,
      kyberCiphertext: handshake.kyberCiphertext,
      baseKey: inputs.ourBaseKey.publicKey,
      createdAt: inputs.now,
    },
    spqr: spqrInitialState(handshake.pqrKey, "A2B", inputs.selfSession),
  };
}

/** Everything the responder needs beyond PQXDH's inputs. */
export interface ResponderSessionInputs extends ResponderInputs {
  ourRegistrationId: number;
  theirRegistrationId: number;
  selfSession: boolean;
}

/** The responder's new state: PQXDH, its signed prekey as first ratchet key and PQXDH's chain as its sending chain. */
export async function initializeResponderState(inputs: ResponderSessionInputs): Promise<SessionState> {
  const handshake = await pqxdhAccept(inputs);
  return {
    version: MESSAGE_VERSION,
    localIdentityKey: inputs.ourIdentity.publicKey,
    remoteIdentityKey: inputs.theirIdentityKey,
    localRegistrationId: inputs.ourRegistrationId,
    remoteRegistrationId: inputs.theirRegistrationId,
    aliceBaseKey: inputs.theirBaseKey,
    selfSession: inputs.selfSession,
    rootKey: handshake.rootKey,
    previousCounter: 0,
    sender: { ratchetKey: inputs.ourSignedPreKey, chainKey: { key: handshake.chainKey, index: 0 } },
    receivers: [],
    spqr: spqrInitialState(handshake.pqrKey, "B2A", inputs.selfSession),
  };
}

/** A deep copy of a state (trial decryption works on copies and commits only on success). */
export function cloneState(state: SessionState): SessionState {
  return structuredClone(state);
}
