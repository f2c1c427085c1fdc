/**
 * Sender keys (Signal's group messaging), wire- and storage-compatible with libsignal's `group_cipher.rs`:
 * a sender hands each group member a SenderKeyDistributionMessage once (over a 1:1 session), then encrypts each
 * group message once (a SenderKeyMessage, ciphertext type 7) for everybody.
 *
 * Limits are libsignal's: a receiver jumps at most {@link MAX_FORWARD_JUMPS} iterations ahead, keeps at most
 * {@link MAX_MESSAGE_KEYS} skipped keys per chain for late messages, and at most {@link MAX_SENDER_KEY_STATES}
 * chains per (sender, distribution). A decrypted iteration is never accepted again.
 *
 * Rotation: when a group's membership changes, the app starts a new distribution with {@link newDistributionId} and
 * sends the new distribution message to the current members; a removed member keeps only the old chain.
 */
import { generateKeyPair, KEY_TYPE_DJB, EC_PUBLIC_KEY_BYTES, PRIVATE_KEY_BYTES, xeddsaSign, xeddsaVerifier } from "../../src/protocol/keys";
import { bytesToHex } from "@noble/hashes/utils.js";
import { aes256CbcDecrypt, aes256CbcEncrypt, messageKeys, messageSeed, nextChainKey, type ChainKey } from "./sender-keys-chain";
import { SenderKeyError } from "./sender-keys-errors";
import { MAX_MESSAGE_KEYS, SenderKeyRecord, stateVersion, type SenderKeyState, type SenderMessageKey } from "./sender-keys-record";
import type { SenderAddress, SenderKeyStore } from "./sender-keys-store";
import { isUuid } from "./sender-keys-uuid";
import {
  CHAIN_KEY_BYTES,
  SENDER_KEY_MESSAGE_VERSION,
  encodeSenderKeyDistributionMessage,
  encodeSenderKeyMessageBody,
  parseSenderKeyDistributionMessage,
  parseSenderKeyMessage,
} from "./sender-keys-wire";

export { SenderKeyError, type SenderKeyErrorCode } from "./sender-keys-errors";
export {
  MAX_MESSAGE_KEYS,
  MAX_SENDER_KEY_STATES,
  SenderKeyRecord,
  SenderKeyRecordFormatError,
  type SenderKeyState,
  type SenderMessageKey,
} from "./sender-keys-record";
export { InMemorySenderKeyStore, senderKeyName, type SenderAddress, type SenderKeyStore } from "./sender-keys-store";
export {
  CIPHERTEXT_TYPE_SENDER_KEY,
  SENDER_KEY_MESSAGE_VERSION,
  parseSenderKeyDistributionMessage,
  parseSenderKeyMessage,
  type ParsedSenderKeyMessage,
  type SenderKeyDistribution,
} from "./sender-keys-wire";

/** How many iterations past its chain a receiver will jump for one message (libsignal `MAX_FORWARD_JUMPS`). */
export const MAX_FORWARD_JUMPS = 25_000;

/** A fresh random distribution id (a v4 UUID string): one per group and membership epoch. */
export function newDistributionId(): string {
  return crypto.randomUUID();
}

const fail = (code: ConstructorParameters<typeof SenderKeyError>[0], message: string) => new SenderKeyError(code, message);

function checkAddress(sender: SenderAddress, distributionId?: string): void {
  if (typeof sender?.userId !== "string" || sender.userId === "" || !Number.isInteger(sender.deviceId)) {
    throw new TypeError("sender must be { userId: non-empty string, deviceId: integer }");
  }
  if (distributionId !== undefined && !isUuid(distributionId)) throw new TypeError(`distribution id must be a UUID, got ${JSON.stringify(distributionId)}`);
}

/**
 * Our distribution message for `distributionId`, to send to every member over 1:1 sessions. The first call for a
 * distribution creates our sending chain (random 31-bit chain id, random chain key, new signing key pair) and stores
 * it under our own address; later calls describe the same chain at its current iteration, so members who get it late
 * cannot read earlier messages. Returns the serialized SenderKeyDistributionMessage.
 */
export async function createSenderKeyDistributionMessage(
  sender: SenderAddress,
  distributionId: string,
  store: SenderKeyStore,
): Promise<Uint8Array<ArrayBuffer>> {
  checkAddress(sender, distributionId);
  let record = await store.loadSenderKey(sender, distributionId);
  if (!record) {
    record = new SenderKeyRecord();
    const chainId = crypto.getRandomValues(new Uint32Array(1))[0]! >>> 1; // 31 bits, as libsignal (for Java's ints)
    const signing = generateKeyPair();
    record.addState(chainId, { iteration: 0, seed: crypto.getRandomValues(new Uint8Array(CHAIN_KEY_BYTES)) }, signing.publicKey, signing.privateKey);
    await store.storeSenderKey(sender, distributionId, record);
  }
  const state = record.states[0];
  if (!state?.chainKey || !state.signingKey) throw fail("invalid-session", `sender key state for ${distributionId} is unusable`);
  return encodeSenderKeyDistributionMessage({
    distributionId,
    chainId: state.chainId,
    iteration: state.chainKey.iteration,
    chainKey: state.chainKey.seed,
    signingKey: state.signingKey.publicKey,
  });
}

/**
 * Takes in a member's distribution message (received over an authenticated 1:1 session from `sender`), so that
 * their group messages on that distribution decrypt. Processing the same message again changes nothing.
 */
export async function processSenderKeyDistributionMessage(sender: SenderAddress, message: Uint8Array, store: SenderKeyStore): Promise<void> {
  checkAddress(sender);
  const m = parseSenderKeyDistributionMessage(message);
  const record = (await store.loadSenderKey(sender, m.distributionId)) ?? new SenderKeyRecord();
  record.addState(m.chainId, { iteration: m.iteration, seed: m.chainKey }, m.signingKey);
  await store.storeSenderKey(sender, m.distributionId, record);
}

/**
 * Encrypts one group message with our newest chain for `distributionId` (created by
 * {@link createSenderKeyDistributionMessage}) and advances the chain. Returns the serialized SenderKeyMessage
 * (ciphertext type 7): `0x33` ‖ protobuf ‖ XEdDSA signature.
 */
export async function groupEncrypt(
  sender: SenderAddress,
  distributionId: string,
  store: SenderKeyStore,
  plaintext: Uint8Array,
): Promise<Uint8Array<ArrayBuffer>> {
  checkAddress(sender, distributionId);
  const record = await store.loadSenderKey(sender, distributionId);
  if (!record) throw fail("no-sender-key-state", `no sender key for distribution ${distributionId}`);
  const state = record.states[0];
  const privateKey = state?.signingKey?.privateKey;
  if (!state?.chainKey || privateKey?.length !== PRIVATE_KEY_BYTES || stateVersion(state) !== SENDER_KEY_MESSAGE_VERSION) {
    throw fail("invalid-session", `sender key state for ${distributionId} cannot send`);
  }
  const { iv, key } = messageKeys(messageSeed(state.chainKey));
  const next = nextChainKey(state.chainKey);
  const ciphertext = await aes256CbcEncrypt(key, iv, plaintext);
  const body = encodeSenderKeyMessageBody({ distributionId, chainId: state.chainId, iteration: state.chainKey.iteration, ciphertext });
  const signature = xeddsaSign(privateKey, body);
  state.chainKey = next;
  await store.storeSenderKey(sender, distributionId, record);
  const out = new Uint8Array(body.length + signature.length);
  out.set(body);
  out.set(signature, body.length);
  return out;
}

/**
 * Decrypts a SenderKeyMessage from `sender` (whose distribution message we processed). Accepts messages out of
 * order within libsignal's bounds; refuses replays, bad signatures, unknown distributions or chains, and
 * tampering, with a {@link SenderKeyError} — in which case the store is left untouched.
 */
export async function groupDecrypt(sender: SenderAddress, store: SenderKeyStore, message: Uint8Array): Promise<Uint8Array<ArrayBuffer>> {
  checkAddress(sender);
  const m = parseSenderKeyMessage(message);
  const record = await store.loadSenderKey(sender, m.distributionId);
  if (!record) throw fail("no-sender-key-state", `no sender key for distribution ${m.distributionId}`);
  const state = record.stateForChainId(m.chainId);
  if (!state) throw fail("no-sender-key-state", `no chain ${m.chainId} for distribution ${m.distributionId}`);
  if (stateVersion(state) !== SENDER_KEY_MESSAGE_VERSION) throw fail("unrecognized-version", `message version mismatch`);
  const signingKey = state.signingKey?.publicKey;
  if (signingKey?.length !== EC_PUBLIC_KEY_BYTES || signingKey[0] !== KEY_TYPE_DJB) {
    throw fail("invalid-session", `sender key state for ${m.distributionId} has no usable signing key`);
  }
  if (!verifierFor(signingKey)(m.signed, m.signature)) throw fail("bad-signature", "sender key message signature does not verify");

  const step = findMessageKey(state, m.iteration);
  const { iv, key } = messageKeys(step.seed);
  const plaintext = await aes256CbcDecrypt(key, iv, m.ciphertext);
  if (!plaintext) throw fail("invalid-message", "sender key message does not decrypt");
  step.commit();
  await store.storeSenderKey(sender, m.distributionId, record);
  return plaintext;
}

/**
 * The seed for `iteration`, as libsignal's `get_sender_key` finds it, with the state change kept in `commit` so that
 * nothing changes unless the message then decrypts.
 */
function findMessageKey(state: SenderKeyState, iteration: number): { seed: Uint8Array; commit: () => void } {
  const chain = state.chainKey;
  if (!chain || chain.seed.length !== CHAIN_KEY_BYTES) throw fail("invalid-session", "sender key state has no chain key");
  if (chain.iteration > iteration) {
    const index = state.messageKeys.findIndex((k) => k.iteration === iteration);
    if (index < 0) throw fail("duplicate", `duplicate message: iteration ${iteration}, chain at ${chain.iteration}`);
    return { seed: state.messageKeys[index]!.seed, commit: () => void state.messageKeys.splice(index, 1) };
  }
  if (iteration - chain.iteration > MAX_FORWARD_JUMPS) {
    throw fail("too-far-ahead", `message from too far into the future: iteration ${iteration}, chain at ${chain.iteration}`);
  }
  const skipped: SenderMessageKey[] = [];
  let current: ChainKey = chain;
  while (current.iteration < iteration) {
    skipped.push({ iteration: current.iteration, seed: messageSeed(current) });
    current = nextChainKey(current);
  }
  const next = nextChainKey(current);
  return {
    seed: messageSeed(current),
    commit: () => {
      state.messageKeys.push(...skipped.slice(-MAX_MESSAGE_KEYS));
      state.messageKeys.splice(0, Math.max(0, state.messageKeys.length - MAX_MESSAGE_KEYS));
      state.chainKey = next;
    },
  };
}

/** Verifiers for recently seen signing keys: a key decoded once, with a precomputed table from its second message on. */
const verifiers = new Map<string, (message: Uint8Array, signature: Uint8Array) => boolean>();
const VERIFIER_CACHE = 64;

function verifierFor(publicKey: Uint8Array) {
  const name = bytesToHex(publicKey);
  let verify = verifiers.get(name);
  if (verify) verifiers.delete(name);
  else verify = xeddsaVerifier(publicKey);
  verifiers.set(name, verify); // most recently used last
  if (verifiers.size > VERIFIER_CACHE) verifiers.delete(verifiers.keys().next().value!);
  return verify;
}
