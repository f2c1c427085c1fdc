/**
 * client/crypto/fingerprint.ts against Signal's own library (@signalapp/libsignal-client 0.103, the oracle):
 * same digits and scannable bytes for random keys and identifiers, symmetric between the two sides, and each
 * library's comparison accepts the other's scannable form.
 */
import { Fingerprint, PrivateKey, PublicKey, ScannableFingerprint } from "@signalapp/libsignal-client";
import { describe, expect, it } from "vitest";
import { FINGERPRINT_ITERATIONS, FINGERPRINT_VERSION, compareScannableFingerprints, safetyNumber, userIdIdentifier } from "../../../client/crypto/fingerprint";
import { generateKeyPair } from "../../../src/protocol/keys";

const ROUNDS = 8;
const bytes = (b: Uint8Array) => Uint8Array.from(b);

/** A random identifier: a UUID's bytes, a phone number, or arbitrary bytes of random length (even empty). */
function randomIdentifier(i: number): Uint8Array {
  if (i % 3 === 0) return userIdIdentifier(crypto.randomUUID());
  if (i % 3 === 1) return new TextEncoder().encode(`+1415${String(crypto.getRandomValues(new Uint32Array(1))[0]! % 10_000_000).padStart(7, "0")}`);
  return crypto.getRandomValues(new Uint8Array(crypto.getRandomValues(new Uint8Array(1))[0]! % 40));
}

/** A random identity key, from either library. */
const randomKey = (i: number): Uint8Array => (i % 2 === 0 ? generateKeyPair().publicKey : PrivateKey.generate().getPublicKey().serialize());

describe("safety numbers match libsignal's", () => {
  it(`for ${ROUNDS} random pairs of keys and identifiers, both sides, version 2 and 5200 iterations`, () => {
    for (let i = 0; i < ROUNDS; i++) {
      const [aId, bId, aKey, bKey] = [randomIdentifier(i), randomIdentifier(i + 1), randomKey(i), randomKey(i + 1)];
      const ours = safetyNumber({ localIdentifier: aId, localKey: aKey, remoteIdentifier: bId, remoteKey: bKey });
      const theirs = Fingerprint.new(FINGERPRINT_ITERATIONS, FINGERPRINT_VERSION, bytes(aId), PublicKey.deserialize(bytes(aKey)), bytes(bId), PublicKey.deserialize(bytes(bKey)));
      expect(ours.digits).toMatch(/^\d{60}$/);
      expect(ours.digits).toBe(theirs.displayableFingerprint().toString());
      expect(ours.scannable).toEqual(theirs.scannableFingerprint().toBuffer());

      // the other side sees the same number, and the scannable forms are mirrors that both libraries accept
      const oursB = safetyNumber({ localIdentifier: bId, localKey: bKey, remoteIdentifier: aId, remoteKey: aKey });
      const theirsB = Fingerprint.new(FINGERPRINT_ITERATIONS, FINGERPRINT_VERSION, bytes(bId), PublicKey.deserialize(bytes(bKey)), bytes(aId), PublicKey.deserialize(bytes(aKey)));
      expect(oursB.digits).toBe(ours.digits);
      expect(oursB.scannable).toEqual(theirsB.scannableFingerprint().toBuffer());
      expect(compareScannableFingerprints(ours.scannable, theirsB.scannableFingerprint().toBuffer())).toBe(true);
      expect(theirs.scannableFingerprint().compare(ScannableFingerprint._fromBuffer(bytes(oursB.scannable)))).toBe(true);
      expect(theirs.scannableFingerprint().compare(ScannableFingerprint._fromBuffer(bytes(ours.scannable)))).toBe(false);
      expect(compareScannableFingerprints(ours.scannable, ours.scannable)).toBe(false);
    }
  });

  it("for other iteration counts and versions", () => {
    for (const [iterations, version] of [
      [2, 1],
      [1024, 1],
      [5200, 0],
      [777, 3],
    ] as const) {
      const [aId, bId, aKey, bKey] = [randomIdentifier(0), randomIdentifier(1), randomKey(0), randomKey(1)];
      const ours = safetyNumber({ iterations, version, localIdentifier: aId, localKey: aKey, remoteIdentifier: bId, remoteKey: bKey });
      const theirs = Fingerprint.new(iterations, version, bytes(aId), PublicKey.deserialize(bytes(aKey)), bytes(bId), PublicKey.deserialize(bytes(bKey)));
      expect(ours.digits).toBe(theirs.displayableFingerprint().toString());
      expect(ours.scannable).toEqual(theirs.scannableFingerprint().toBuffer());
    }
  });

  it("when both sides are the same key and identifier", () => {
    const [id, key] = [randomIdentifier(0), randomKey(0)];
    const ours = safetyNumber({ localIdentifier: id, localKey: key, remoteIdentifier: id, remoteKey: key });
    const theirs = Fingerprint.new(FINGERPRINT_ITERATIONS, FINGERPRINT_VERSION, bytes(id), PublicKey.deserialize(bytes(key)), bytes(id), PublicKey.deserialize(bytes(key)));
    expect(ours.digits).toBe(theirs.displayableFingerprint().toString());
    expect(ours.digits.slice(0, 30)).toBe(ours.digits.slice(30));
  });
});
