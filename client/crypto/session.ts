/**
 * The 1:1 session API: start a session from a recipient's bundle, encrypt to it, decrypt from it, with
 * libsignal's session management (rust/protocol/src/session.rs and session_management.rs): identity
 * checks, the PreKeySignalMessage wrapper until the peer answers, trial decryption over the current and
 * previous states (simultaneous initiation), and prekey bookkeeping. Operations on one store run one at
 * a time; state is written back only after success, so a refused message changes nothing.
 */
import { generateKeyPair, xeddsaVerify } from "../../src/protocol/keys";
import { assertAddress, encodeAddresses, sameServiceId, type ProtocolAddress } from "./address";
import { assertBundle, type PreKeyBundle } from "./bundle";
import { bytesEqual } from "./bytes";
import {
  DuplicateMessageError,
  InvalidMessageError,
  InvalidPreKeyIdError,
  InvalidSignatureError,
  NoSessionError,
  ProtocolError,
  UntrustedIdentityError,
} from "./errors";
import { MAX_UNACKNOWLEDGED_SESSION_AGE_MS } from "./limits";
import { withLock } from "./lock";
import {
  decodePreKeySignalMessage,
  decodeSignalMessage,
  encodePreKeySignalMessage,
  MESSAGE_VERSION,
  PREKEY_SIGNAL_MESSAGE_TYPE,
  SIGNAL_MESSAGE_TYPE,
  type CiphertextMessage,
  type DecodedSignalMessage,
} from "./messages";
import { ratchetDecrypt, ratchetEncrypt } from "./ratchet";
import { SessionRecord } from "./session-record";
import { cloneState, initializeInitiatorState, initializeResponderState } from "./session-state";
import type { ProtocolStore } from "./store";

/** Options of the session calls; `now` (ms since 1970) is for tests of session expiry. */
export interface SessionOptions {
  now?: number;
}

async function loadRecord(store: ProtocolStore, address: ProtocolAddress): Promise<SessionRecord | undefined> {
  const bytes = await store.loadSession(address);
  return bytes ? SessionRecord.deserialize(bytes) : undefined;
}

/** libsignal's `is_same_account`: same identity key and the same service id (then no jump limits apply). */
function isSelfSession(ourIdentityKey: Uint8Array, local: ProtocolAddress, theirIdentityKey: Uint8Array, remote: ProtocolAddress): boolean {
  return bytesEqual(ourIdentityKey, theirIdentityKey) && sameServiceId(local.userId, remote.userId);
}

/**
 * Starts a session with `address` from its prekey bundle (PQXDH as initiator). Refuses an untrusted
 * identity ({@link UntrustedIdentityError}: a changed key the app has not approved with `saveIdentity`),
 * a signed prekey or Kyber prekey whose signature does not verify ({@link InvalidSignatureError}) and
 * malformed keys. The new session becomes current; messages go out as PreKeySignalMessages until the
 * peer answers.
 * @example
 * await processPreKeyBundle(store, { userId, deviceId: 1 }, bundleFromDeviceBundle(device));
 * const { type, body } = await encrypt(store, { userId, deviceId: 1 }, utf8("hello"));
 */
export async function processPreKeyBundle(store: ProtocolStore, address: ProtocolAddress, bundle: PreKeyBundle, options: SessionOptions = {}): Promise<void> {
  assertAddress(address);
  assertBundle(bundle);
  return withLock(store, async () => {
    if (!(await store.isTrustedIdentity(address, bundle.identityKey, "sending"))) throw new UntrustedIdentityError(address);
    if (!xeddsaVerify(bundle.identityKey, bundle.signedPreKey, bundle.signedPreKeySignature)) throw new InvalidSignatureError("signed prekey");
    if (!xeddsaVerify(bundle.identityKey, bundle.kyberPreKey, bundle.kyberPreKeySignature)) throw new InvalidSignatureError("Kyber prekey");
    const record = (await loadRecord(store, address)) ?? new SessionRecord();
    const ourIdentity = await store.getIdentityKeyPair();
    const local = await store.getLocalAddress();
    const state = await initializeInitiatorState({
      ourIdentity,
      ourBaseKey: generateKeyPair(),
      theirIdentityKey: bundle.identityKey,
      theirSignedPreKey: bundle.signedPreKey,
      ...(bundle.preKey ? { theirOneTimePreKey: bundle.preKey, preKeyId: bundle.preKeyId! } : {}),
      theirKyberPreKey: bundle.kyberPreKey,
      ourRegistrationId: await store.getLocalRegistrationId(),
      theirRegistrationId: bundle.registrationId,
      signedPreKeyId: bundle.signedPreKeyId,
      kyberPreKeyId: bundle.kyberPreKeyId,
      selfSession: isSelfSession(ourIdentity.publicKey, local, bundle.identityKey, address),
      now: options.now ?? Date.now(),
    });
    await store.saveIdentity(address, bundle.identityKey);
    record.promoteState(state);
    await store.storeSession(address, record.serialize());
  });
}

/**
 * Encrypts `plaintext` for `address` on the current session: a PreKeySignalMessage (type 3) until the
 * peer has answered, then SignalMessages (type 2). Throws {@link NoSessionError} without a session
 * (or when an unanswered one is older than 30 days) and {@link UntrustedIdentityError} when the store no
 * longer trusts the session's identity.
 */
export async function encrypt(store: ProtocolStore, address: ProtocolAddress, plaintext: Uint8Array, options: SessionOptions = {}): Promise<CiphertextMessage> {
  assertAddress(address);
  if (!(plaintext instanceof Uint8Array)) throw new TypeError("plaintext must be a Uint8Array");
  return withLock(store, async () => {
    const record = await loadRecord(store, address);
    if (!record?.current) throw new NoSessionError(address);
    const state = cloneState(record.current);
    let message: CiphertextMessage;
    if (state.pending) {
      if (state.pending.createdAt + MAX_UNACKNOWLEDGED_SESSION_AGE_MS < (options.now ?? Date.now())) {
        throw new NoSessionError(address, "stale unacknowledged session");
      }
      const inner = ratchetEncrypt(state, plaintext, encodeAddresses(await store.getLocalAddress(), address));
      const body = encodePreKeySignalMessage({
        registrationId: state.localRegistrationId,
        ...(state.pending.preKeyId !== undefined ? { preKeyId: state.pending.preKeyId } : {}),
        signedPreKeyId: state.pending.signedPreKeyId,
        kyberPreKeyId: state.pending.kyberPreKeyId,
        kyberCiphertext: state.pending.kyberCiphertext,
        baseKey: state.pending.baseKey,
        identityKey: state.localIdentityKey,
        message: inner,
      });
      message = { type: PREKEY_SIGNAL_MESSAGE_TYPE, body };
    } else {
      message = { type: SIGNAL_MESSAGE_TYPE, body: ratchetEncrypt(state, plaintext) };
    }
    if (!(await store.isTrustedIdentity(address, state.remoteIdentityKey, "sending"))) throw new UntrustedIdentityError(address);
    await store.saveIdentity(address, state.remoteIdentityKey);
    record.current = state;
    await store.storeSession(address, record.serialize());
    return message;
  });
}

/**
 * Decrypts a message from `address`. A PreKeySignalMessage sets up the session it announces (PQXDH as
 * responder) unless it already exists. Throws {@link DuplicateMessageError} for a replayed or
 * re-delivered message, {@link InvalidMessageError} for anything malformed or that fails to
 * authenticate, {@link UntrustedIdentityError}, {@link InvalidPreKeyIdError} and {@link NoSessionError}.
 * Nothing is stored when it throws.
 */
export async function decrypt(store: ProtocolStore, address: ProtocolAddress, message: CiphertextMessage): Promise<Uint8Array> {
  assertAddress(address);
  if (message?.type === PREKEY_SIGNAL_MESSAGE_TYPE) return withLock(store, () => decryptPreKey(store, address, message.body));
  if (message?.type === SIGNAL_MESSAGE_TYPE) return withLock(store, () => decryptWhisper(store, address, message.body));
  throw new InvalidMessageError(`unknown ciphertext type ${String(message?.type)}`);
}

/** Whether `address` has a current session that can send (not an unanswered one past 30 days). */
export async function hasSession(store: ProtocolStore, address: ProtocolAddress, options: SessionOptions = {}): Promise<boolean> {
  const record = await loadRecord(store, address);
  const pending = record?.current?.pending;
  if (!record?.current) return false;
  return !pending || pending.createdAt + MAX_UNACKNOWLEDGED_SESSION_AGE_MS >= (options.now ?? Date.now());
}

async function decryptPreKey(store: ProtocolStore, address: ProtocolAddress, body: Uint8Array): Promise<Uint8Array> {
  const message = decodePreKeySignalMessage(body);
  if (!(await store.isTrustedIdentity(address, message.identityKey, "receiving"))) throw new UntrustedIdentityError(address);
  const record = (await loadRecord(store, address)) ?? new SessionRecord();
  const local = await store.getLocalAddress();
  let newSession = false;
  if (!record.promoteMatchingSession(MESSAGE_VERSION, message.baseKey)) {
    const ourSignedPreKey = await store.loadSignedPreKey(message.signedPreKeyId);
    if (!ourSignedPreKey) throw new InvalidPreKeyIdError("signed prekey", message.signedPreKeyId);
    const ourKyberPreKey = await store.loadKyberPreKey(message.kyberPreKeyId);
    if (!ourKyberPreKey) throw new InvalidPreKeyIdError("Kyber prekey", message.kyberPreKeyId);
    const ourOneTimePreKey = message.preKeyId === undefined ? undefined : await store.loadPreKey(message.preKeyId);
    if (message.preKeyId !== undefined && !ourOneTimePreKey) throw new InvalidPreKeyIdError("one-time prekey", message.preKeyId);
    const ourIdentity = await store.getIdentityKeyPair();
    record.promoteState(
      await initializeResponderState({
        ourIdentity,
        ourSignedPreKey,
        ...(ourOneTimePreKey ? { ourOneTimePreKey } : {}),
        ourKyberSecretKey: ourKyberPreKey.secretKey,
        theirIdentityKey: message.identityKey,
        theirBaseKey: message.baseKey,
        kyberCiphertext: message.kyberCiphertext,
        ourRegistrationId: await store.getLocalRegistrationId(),
        theirRegistrationId: message.registrationId,
        selfSession: isSelfSession(ourIdentity.publicKey, local, message.identityKey, address),
      }),
    );
    newSession = true;
  }
  const plaintext = await decryptFromRecord(record, message.message, encodeAddresses(address, local), true);
  await store.saveIdentity(address, message.identityKey);
  if (newSession) {
    await store.markKyberPreKeyUsed(message.kyberPreKeyId, message.signedPreKeyId, message.baseKey);
    if (message.preKeyId !== undefined) await store.removePreKey(message.preKeyId);
  }
  await store.storeSession(address, record.serialize());
  return plaintext;
}

async function decryptWhisper(store: ProtocolStore, address: ProtocolAddress, body: Uint8Array): Promise<Uint8Array> {
  const message = decodeSignalMessage(body);
  const record = await loadRecord(store, address);
  if (!record?.current && !record?.previous.length) throw new NoSessionError(address);
  const local = await store.getLocalAddress();
  const plaintext = await decryptFromRecord(record, message, encodeAddresses(address, local), false);
  const remoteIdentityKey = record.current!.remoteIdentityKey;
  if (!(await store.isTrustedIdentity(address, remoteIdentityKey, "receiving"))) throw new UntrustedIdentityError(address);
  await store.saveIdentity(address, remoteIdentityKey);
  await store.storeSession(address, record.serialize());
  return plaintext;
}

/**
 * Trial decryption (libsignal's Sesame step): the current state, then (for SignalMessages only) each
 * previous state, each on a copy; the state that decrypts becomes current. A duplicate stops the search.
 */
async function decryptFromRecord(record: SessionRecord, message: DecodedSignalMessage, expectedAddresses: Uint8Array | undefined, preKey: boolean): Promise<Uint8Array> {
  const context = { expectedAddresses };
  const failures: string[] = [];
  const attempt = async (state: NonNullable<SessionRecord["current"]>) => {
    const copy = cloneState(state);
    try {
      const plaintext = await ratchetDecrypt(copy, message, context);
      delete copy.pending;
      return { copy, plaintext };
    } catch (error) {
      if (error instanceof DuplicateMessageError || !(error instanceof ProtocolError)) throw error;
      failures.push(error.message);
      return undefined;
    }
  };
  if (record.current) {
    const result = await attempt(record.current);
    if (result) {
      record.current = result.copy;
      return result.plaintext;
    }
    if (preKey) throw new InvalidMessageError(`decryption failed: ${failures[0]}`);
  }
  for (let i = 0; i < record.previous.length; i++) {
    const result = await attempt(record.previous[i]!);
    if (result) {
      record.promotePrevious(i, result.copy);
      return result.plaintext;
    }
  }
  throw new InvalidMessageError(`decryption failed with ${failures.length} session state(s): ${failures[0] ?? "no session"}`);
}

