/**
 * client/crypto/kem.ts: Kyber1024 round 3 on @noble/post-quantum's ML-KEM-1024, in libsignal's
 * serialization. libsignal exposes no raw encapsulate/decapsulate, so its agreement with ours is proven
 * through PQXDH sessions (session.interop.test.ts) and here by handing our key pair to libsignal's store.
 */
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { sha3_256, shake256 } from "@noble/hashes/sha3.js";
import { ml_kem1024 } from "@noble/post-quantum/ml-kem.js";
import { KEMPublicKey, KyberPreKeyRecord } from "@signalapp/libsignal-client";
import { describe, expect, it } from "vitest";
import { xeddsaSign } from "../../../src/protocol/keys";
import { InvalidKeyError, decrypt, encrypt, processPreKeyBundle } from "../../../client/crypto";
import { concatBytes } from "../../../client/crypto/bytes";
import {
  KYBER1024_CIPHERTEXT_BYTES,
  KYBER1024_SECRET_KEY_BYTES,
  generateKyberKeyPair,
  kyberDecapsulate,
  kyberEncapsulate,
} from "../../../client/crypto/kem";
import { ab, LibsignalDevice, RelayDevice, text, utf8 } from "./libsignal-stores";

describe("Kyber1024 round 3", () => {
  it("serializes keys and ciphertexts as libsignal does (0x08 ‖ …, 1569 / 3169 / 1569 bytes)", () => {
    const { publicKey, secretKey } = generateKyberKeyPair();
    expect([publicKey.length, publicKey[0]]).toEqual([1569, 0x08]);
    expect([secretKey.length, secretKey[0]]).toEqual([KYBER1024_SECRET_KEY_BYTES, 0x08]);
    expect(KEMPublicKey.deserialize(ab(publicKey)).serialize()).toEqual(publicKey);
    const { ciphertext, sharedSecret } = kyberEncapsulate(publicKey);
    expect([ciphertext.length, ciphertext[0], sharedSecret.length]).toEqual([KYBER1024_CIPHERTEXT_BYTES, 0x08, 32]);
  });

  it("decapsulates what it encapsulates, to keys of both libsignal's and our making", () => {
    for (let i = 0; i < 5; i++) {
      const ours = generateKyberKeyPair();
      const { ciphertext, sharedSecret } = kyberEncapsulate(ours.publicKey);
      expect(kyberDecapsulate(ours.secretKey, ciphertext)).toEqual(sharedSecret);
    }
    const lib = new LibsignalDevice().kyberPreKeys.keys.get(1)!;
    const { ciphertext, sharedSecret } = kyberEncapsulate(lib.publicKey().serialize());
    expect(kyberDecapsulate(lib.secretKey().serialize(), ciphertext)).toEqual(sharedSecret);
  });

  it("derives round 3's secret, not ML-KEM's: SHAKE256(K̄ ‖ SHA3-256(ct)) with m = SHA3-256(random)", () => {
    const seed = new Uint8Array(64).fill(3);
    const random = new Uint8Array(32).fill(4);
    const { publicKey, secretKey } = generateKyberKeyPair(seed);
    const { ciphertext, sharedSecret } = kyberEncapsulate(publicKey, random);
    const mlkem = ml_kem1024.encapsulate(publicKey.subarray(1), sha3_256(random));
    expect(ciphertext.subarray(1)).toEqual(mlkem.cipherText);
    expect(sharedSecret).not.toEqual(mlkem.sharedSecret);
    expect(sharedSecret).toEqual(shake256(concatBytes(mlkem.sharedSecret, sha3_256(mlkem.cipherText)), { dkLen: 32 }));
    // Deterministic given its inputs.
    expect(kyberEncapsulate(publicKey, random)).toEqual({ ciphertext, sharedSecret });
    expect(generateKyberKeyPair(seed)).toEqual({ publicKey, secretKey });
  });

  it("gives a different secret for a tampered ciphertext (implicit rejection) and refuses malformed input", () => {
    const { publicKey, secretKey } = generateKyberKeyPair();
    const { ciphertext, sharedSecret } = kyberEncapsulate(publicKey);
    const tampered = ciphertext.map((b, i) => (i === 100 ? b ^ 1 : b));
    expect(kyberDecapsulate(secretKey, tampered)).not.toEqual(sharedSecret);
    expect(() => kyberEncapsulate(publicKey.subarray(1))).toThrow(new InvalidKeyError("Kyber public key must be 1569 bytes, got 1568"));
    expect(() => kyberEncapsulate(publicKey.map((b, i) => (i === 0 ? 0x0a : b)))).toThrow("Kyber public key must start with type byte 0x08, got 0x0a");
    expect(() => kyberDecapsulate(secretKey, ciphertext.subarray(0, 1000))).toThrow("Kyber ciphertext must be 1569 bytes, got 1000");
    expect(() => kyberDecapsulate(publicKey, ciphertext)).toThrow("Kyber secret key must be 3169 bytes, got 1569");
  });

  it("libsignal decapsulates with a key pair we generated (PQXDH from our bundle key, in libsignal's store)", async () => {
    const lib = new LibsignalDevice();
    const ours = generateKyberKeyPair();
    const signature = xeddsaSign(new Uint8Array(lib.identity.serialize()), ours.publicKey);
    // libsignal's KyberPreKeyRecord storage form: { 1 id, 2 public, 3 secret, 4 signature, 5 fixed64 timestamp }.
    const record = new BinaryWriter()
      .tag(1, WireType.Varint)
      .uint32(1)
      .tag(2, WireType.LengthDelimited)
      .bytes(ours.publicKey)
      .tag(3, WireType.LengthDelimited)
      .bytes(ours.secretKey)
      .tag(4, WireType.LengthDelimited)
      .bytes(signature)
      .tag(5, WireType.Bit64)
      .fixed64(Date.now())
      .finish();
    lib.kyberPreKeys.keys.set(1, KyberPreKeyRecord.deserialize(ab(record)));
    const relay = new RelayDevice();
    await processPreKeyBundle(relay.store, lib.address, lib.bundle(true));
    expect(text(await lib.decrypt(relay.address, await encrypt(relay.store, lib.address, utf8("over our Kyber key"))))).toBe("over our Kyber key");
    expect(text(await decrypt(relay.store, lib.address, await lib.encrypt(relay.address, utf8("ok"))))).toBe("ok");
  });
});
