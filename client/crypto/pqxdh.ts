/**
 * PQXDH as libsignal runs it (rust/protocol/src/pqxdh.rs): four (or three) X25519 agreements and one
 * Kyber1024 encapsulation, concatenated after 32 bytes of 0xFF and fed to HKDF (see kdf.ts). Pure
 * functions: no store, no randomness except the Kyber encapsulation's (injectable for tests).
 */
import { concatBytes } from "./bytes";
import { agree, isCanonicalPublicKey, type KeyPair } from "./curve";
import { InvalidMessageError } from "./errors";
import { deriveHandshakeKeys, type HandshakeKeys } from "./kdf";
import { kyberDecapsulate, kyberEncapsulate } from "./kem";

const DISCONTINUITY = new Uint8Array(32).fill(0xff);

/** The initiator's inputs: its identity and fresh base key, and the responder's bundle keys. */
export interface InitiatorInputs {
  ourIdentity: KeyPair;
  ourBaseKey: KeyPair;
  theirIdentityKey: Uint8Array;
  theirSignedPreKey: Uint8Array;
  theirOneTimePreKey?: Uint8Array;
  theirKyberPreKey: Uint8Array;
}

/** The responder's inputs: its identity and prekeys, and what the PreKeySignalMessage carried. */
export interface ResponderInputs {
  ourIdentity: KeyPair;
  ourSignedPreKey: KeyPair;
  ourOneTimePreKey?: KeyPair;
  ourKyberSecretKey: Uint8Array;
  theirIdentityKey: Uint8Array;
  theirBaseKey: Uint8Array;
  kyberCiphertext: Uint8Array;
}

/**
 * Initiator side: DH(IKa, SPKb) ‖ DH(EKa, IKb) ‖ DH(EKa, SPKb) [‖ DH(EKa, OPKb)] ‖ Kyber secret.
 * Returns the handshake keys and the Kyber ciphertext to send. `kyberRandom` (32 bytes) is for tests.
 */
export async function pqxdhInitiate(inputs: InitiatorInputs, kyberRandom?: Uint8Array): Promise<HandshakeKeys & { kyberCiphertext: Uint8Array }> {
  const parts = [
    DISCONTINUITY,
    ...(await Promise.all([
      agree(inputs.ourIdentity.privateKey, inputs.theirSignedPreKey),
      agree(inputs.ourBaseKey.privateKey, inputs.theirIdentityKey),
      agree(inputs.ourBaseKey.privateKey, inputs.theirSignedPreKey),
      ...(inputs.theirOneTimePreKey ? [agree(inputs.ourBaseKey.privateKey, inputs.theirOneTimePreKey)] : []),
    ])),
  ];
  const { ciphertext, sharedSecret } = kyberEncapsulate(inputs.theirKyberPreKey, kyberRandom);
  parts.push(sharedSecret);
  return { ...deriveHandshakeKeys(concatBytes(...parts)), kyberCiphertext: ciphertext };
}

/** Responder side: the same secret input from the other halves. Refuses a non-canonical base key, as libsignal does. */
export async function pqxdhAccept(inputs: ResponderInputs): Promise<HandshakeKeys> {
  if (!isCanonicalPublicKey(inputs.theirBaseKey)) throw new InvalidMessageError("incoming base key is invalid");
  const parts = [
    DISCONTINUITY,
    ...(await Promise.all([
      agree(inputs.ourSignedPreKey.privateKey, inputs.theirIdentityKey),
      agree(inputs.ourIdentity.privateKey, inputs.theirBaseKey),
      agree(inputs.ourSignedPreKey.privateKey, inputs.theirBaseKey),
      ...(inputs.ourOneTimePreKey ? [agree(inputs.ourOneTimePreKey.privateKey, inputs.theirBaseKey)] : []),
    ])),
  ];
  parts.push(kyberDecapsulate(inputs.ourKyberSecretKey, inputs.kyberCiphertext));
  return deriveHandshakeKeys(concatBytes(...parts));
}
