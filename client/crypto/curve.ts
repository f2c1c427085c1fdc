/** X25519 agreement on libsignal's 33-byte serialized keys, and libsignal's "canonical key" test for PQXDH base keys. */
import { ed25519, x25519 } from "@noble/curves/ed25519.js";
import { bytesToNumberLE } from "@noble/curves/utils.js";
import { EC_PUBLIC_KEY_BYTES, KEY_TYPE_DJB } from "../../src/protocol/keys";
import { InvalidKeyError } from "./errors";

/** A Curve25519 key pair: 33-byte serialized public key (`0x05` ‖ u), 32-byte private key. */
export interface KeyPair {
  publicKey: Uint8Array;
  privateKey: Uint8Array;
}

/** PKCS#8 header of a raw X25519 private key (RFC 8410), for WebCrypto's import. */
const PKCS8_X25519 = Uint8Array.of(0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20);

async function webCryptoAgree(ourPrivateKey: Uint8Array, theirU: Uint8Array): Promise<Uint8Array> {
  const pkcs8 = new Uint8Array(48);
  pkcs8.set(PKCS8_X25519);
  pkcs8.set(ourPrivateKey, 16);
  const [privateKey, publicKey] = await Promise.all([
    crypto.subtle.importKey("pkcs8", pkcs8, { name: "X25519" }, false, ["deriveBits"]),
    crypto.subtle.importKey("raw", Uint8Array.from(theirU), { name: "X25519" }, false, []),
  ]);
  return new Uint8Array(await crypto.subtle.deriveBits({ name: "X25519", public: publicKey }, privateKey, 256));
}

let webCryptoX25519: Promise<boolean> | undefined;

/** Whether this runtime's WebCrypto does X25519 (Workers, Node, current browsers), checked once against noble. */
function hasWebCryptoX25519(): Promise<boolean> {
  webCryptoX25519 ??= (async () => {
    try {
      const ours = x25519.utils.randomSecretKey();
      const theirs = x25519.getPublicKey(x25519.utils.randomSecretKey());
      const viaWebCrypto = await webCryptoAgree(ours, theirs);
      return viaWebCrypto.every((b, i) => b === x25519.getSharedSecret(ours, theirs)[i]);
    } catch {
      return false;
    }
  })();
  return webCryptoX25519;
}

/**
 * X25519(our private key, their 33-byte serialized public key): WebCrypto's X25519 where the runtime
 * has it (about 8× faster), else @noble/curves. Throws {@link InvalidKeyError} on a malformed key or a
 * low-order point (both refuse those; libsignal would compute an all-zero or predictable secret, which
 * no honest peer ever sends).
 */
export async function agree(ourPrivateKey: Uint8Array, theirPublicKey: Uint8Array): Promise<Uint8Array> {
  if (theirPublicKey.length !== EC_PUBLIC_KEY_BYTES || theirPublicKey[0] !== KEY_TYPE_DJB) {
    throw new InvalidKeyError("public key must be 33 bytes starting with 0x05");
  }
  const theirU = theirPublicKey.subarray(1);
  try {
    if (await hasWebCryptoX25519()) return await webCryptoAgree(ourPrivateKey, theirU);
    return x25519.getSharedSecret(ourPrivateKey, theirU);
  } catch {
    throw new InvalidKeyError("public key is not usable for X25519 (low order)");
  }
}

const Fp = ed25519.Point.Fp;

/**
 * libsignal's `PublicKey::is_canonical`, which PQXDH requires of an incoming base key: u < 2^255 − 19
 * with the top bit clear, and the point (as an Edwards point with sign 0) in the prime-order subgroup.
 */
export function isCanonicalPublicKey(publicKey: Uint8Array): boolean {
  if (publicKey.length !== EC_PUBLIC_KEY_BYTES || publicKey[0] !== KEY_TYPE_DJB) return false;
  const uBytes = publicKey.subarray(1);
  if (uBytes[31]! & 0x80) return false;
  const u = bytesToNumberLE(uBytes);
  if (u >= Fp.ORDER) return false;
  if (u === Fp.ORDER - 1n) return false; // maps to no Edwards point
  try {
    const y = Fp.div(Fp.sub(u, Fp.ONE), Fp.add(u, Fp.ONE));
    return ed25519.Point.fromBytes(Fp.toBytes(y)).isTorsionFree();
  } catch {
    return false; // y not on the curve: u is on the twist
  }
}
