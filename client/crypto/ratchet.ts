/**
 * The Double Ratchet with SPQR message keys ("triple ratchet"), on one {@link SessionState}, in place:
 * encryption of one message and decryption of one message, with libsignal's chain steps, skipped-key
 * bounds and order of checks (rust/protocol/src/double_ratchet.rs and triple_ratchet.rs). Decryption
 * mutates the state it is given even when it fails; callers pass a copy and keep it only on success.
 */
import { generateKeyPair } from "../../src/protocol/keys";
import { aesCbcDecrypt, aesCbcEncrypt } from "./aes-cbc";
import { bytesEqual } from "./bytes";
import { agree } from "./curve";
import { DuplicateMessageError, InvalidMessageError } from "./errors";
import { deriveMessageKeys, messageKeySeed, nextChainKey, rootStep } from "./kdf";
import { MAX_FORWARD_JUMPS, MAX_MESSAGE_KEYS, MAX_RECEIVER_CHAINS } from "./limits";
import { encodeSignalMessage, verifySignalMessageMac, type DecodedSignalMessage } from "./messages";
import type { ReceiverChain, SessionState, SkippedKey } from "./session-state";
import { spqrRecv, spqrSend } from "./spqr";

/**
 * Encrypts one message on the state's sending chain and advances it. Returns the serialized
 * SignalMessage. `addresses` (36 bytes, see address.ts) is bound into it when given.
 */
export function ratchetEncrypt(state: SessionState, plaintext: Uint8Array, addresses?: Uint8Array): Uint8Array {
  const chainKey = state.sender.chainKey;
  const seed = messageKeySeed(chainKey.key);
  const pq = spqrSend(state.spqr);
  const keys = deriveMessageKeys(seed, pq.key);
  const message = encodeSignalMessage(
    {
      ratchetKey: state.sender.ratchetKey.publicKey,
      counter: chainKey.index,
      previousCounter: state.previousCounter,
      ciphertext: aesCbcEncrypt(keys.cipherKey, keys.iv, plaintext),
      pqRatchet: pq.message,
      ...(addresses ? { addresses } : {}),
    },
    keys.macKey,
    state.localIdentityKey,
    state.remoteIdentityKey,
  );
  state.sender.chainKey = { key: nextChainKey(chainKey.key), index: chainKey.index + 1 };
  return message;
}

/** The receiving chain for a peer ratchet key, after a DH ratchet step if the key is new. */
export async function receiverChainFor(state: SessionState, theirRatchetKey: Uint8Array): Promise<ReceiverChain> {
  const existing = state.receivers.find((chain) => bytesEqual(chain.ratchetKey, theirRatchetKey));
  if (existing) return existing;
  // Receiving half-step with our current ratchet key, then a sending half-step with a fresh one.
  const ourNewRatchetKey = generateKeyPair();
  const [receivingSecret, sendingSecret] = await Promise.all([
    agree(state.sender.ratchetKey.privateKey, theirRatchetKey),
    agree(ourNewRatchetKey.privateKey, theirRatchetKey),
  ]);
  const receiving = rootStep(state.rootKey, receivingSecret);
  const sending = rootStep(receiving.rootKey, sendingSecret);
  state.previousCounter = Math.max(state.sender.chainKey.index - 1, 0);
  state.rootKey = sending.rootKey;
  const chain: ReceiverChain = { ratchetKey: theirRatchetKey, chainKey: { key: receiving.chainKey, index: 0 }, skipped: [] };
  state.receivers.push(chain);
  while (state.receivers.length > MAX_RECEIVER_CHAINS) state.receivers.shift();
  state.sender = { ratchetKey: ourNewRatchetKey, chainKey: { key: sending.chainKey, index: 0 } };
  return chain;
}

/**
 * Takes the message-key seed for `counter` out of a receiving chain: a kept skipped seed for an earlier
 * counter (else {@link DuplicateMessageError}: it was used, or dropped), or the chain advanced to it,
 * keeping the seeds it passes (the newest {@link MAX_MESSAGE_KEYS}). Refuses a jump beyond `maxJump`.
 */
export function consumeMessageSeed(chain: ReceiverChain, counter: number, maxJump: number): Uint8Array {
  const index = chain.chainKey.index;
  if (counter < index) {
    const at = chain.skipped.findIndex((k) => k.index === counter);
    if (at < 0) throw new DuplicateMessageError(index, counter);
    return chain.skipped.splice(at, 1)[0]!.seed;
  }
  if (counter - index > maxJump) throw new InvalidMessageError(`message from too far into the future (jump of ${counter - index}, limit ${maxJump})`);
  let key = chain.chainKey.key;
  const passed: SkippedKey[] = [];
  for (let i = index; i < counter; i++) {
    if (counter - i <= MAX_MESSAGE_KEYS) passed.push({ index: i, seed: messageKeySeed(key) });
    key = nextChainKey(key);
  }
  if (passed.length > 0) {
    const all = chain.skipped.concat(passed);
    chain.skipped = all.length > MAX_MESSAGE_KEYS ? all.slice(all.length - MAX_MESSAGE_KEYS) : all;
  }
  chain.chainKey = { key: nextChainKey(key), index: counter + 1 };
  return messageKeySeed(key);
}

/** Where a message claims to come from and go to, for checking its `addresses` field. */
export interface DecryptContext {
  /** The `addresses` field expected for this sender and recipient (undefined when they are not service ids). */
  expectedAddresses: Uint8Array | undefined;
}

/**
 * Decrypts one SignalMessage with `state`, in libsignal's order: receiving chain (DH step if new),
 * message seed, SPQR key, MAC, addresses, AES-CBC. Throws {@link DuplicateMessageError} for a used key,
 * {@link InvalidMessageError} otherwise. The state is changed even on failure: pass a copy.
 */
export async function ratchetDecrypt(state: SessionState, message: DecodedSignalMessage, context: DecryptContext): Promise<Uint8Array> {
  const chain = await receiverChainFor(state, message.ratchetKey);
  const seed = consumeMessageSeed(chain, message.counter, state.selfSession ? Number.MAX_SAFE_INTEGER : MAX_FORWARD_JUMPS);
  const pqKey = spqrRecv(state.spqr, message.pqRatchet);
  const keys = deriveMessageKeys(seed, pqKey);
  if (!verifySignalMessageMac(message, keys.macKey, state.remoteIdentityKey, state.localIdentityKey)) {
    throw new InvalidMessageError("MAC verification failed");
  }
  if (message.addresses) {
    const expected = context.expectedAddresses;
    if (!expected || !bytesEqual(expected, message.addresses)) throw new InvalidMessageError("message addresses do not match sender and recipient");
  }
  return aesCbcDecrypt(keys.cipherKey, keys.iv, message.ciphertext);
}
