/**
 * client/crypto/fingerprint.ts on its own: libsignal's published test vectors (fingerprint.rs, versions 1 and 2),
 * the encodings, and the display and comparison helpers.
 */
import { hexToBytes, bytesToHex } from "@noble/hashes/utils.js";
import { describe, expect, it } from "vitest";
import {
  FingerprintParsingError,
  FingerprintVersionMismatchError,
  compareScannableFingerprints,
  encodeScannableFingerprint,
  fingerprintDigits,
  fingerprintHash,
  formatSafetyNumber,
  parseScannableFingerprint,
  phoneNumberIdentifier,
  safetyNumber,
  safetyNumbersEqual,
  userIdIdentifier,
} from "../../../client/crypto/fingerprint";
import { KeyFormatError, generateKeyPair } from "../../../src/protocol/keys";

// libsignal's fingerprint.rs test vectors.
const ALICE_IDENTITY = hexToBytes("0506863bc66d02b40d27b8d49ca7c09e9239236f9d7d25d6fcca5ce13c7064d868");
const BOB_IDENTITY = hexToBytes("05f781b6fb32fed9ba1cf2de978d4d5da28dc34046ae814402b5c0dbd96fda907b");
const DISPLAY = "300354477692869396892869876765458257569162576843440918079131";
const ALICE_SCANNABLE_V1 =
  "080112220a201e301a0353dce3dbe7684cb8336e85136cdc0ee96219494ada305d62a7bd61df1a220a20d62cbf73a11592015b6b9f1682ac306fea3aaf3885b84d12bca631e9d4fb3a4d";
const BOB_SCANNABLE_V1 =
  "080112220a20d62cbf73a11592015b6b9f1682ac306fea3aaf3885b84d12bca631e9d4fb3a4d1a220a201e301a0353dce3dbe7684cb8336e85136cdc0ee96219494ada305d62a7bd61df";
const ALICE_SCANNABLE_V2 = "0802" + ALICE_SCANNABLE_V1.slice(4);
const BOB_SCANNABLE_V2 = "0802" + BOB_SCANNABLE_V1.slice(4);
const ALICE = phoneNumberIdentifier("+14152222222");
const BOB = phoneNumberIdentifier("+14153333333");

describe("safety numbers: libsignal's test vectors", () => {
  for (const [version, aliceScannable, bobScannable] of [
    [1, ALICE_SCANNABLE_V1, BOB_SCANNABLE_V1],
    [2, ALICE_SCANNABLE_V2, BOB_SCANNABLE_V2],
  ] as const) {
    it(`version ${version}: both sides' digits and scannable forms`, () => {
      const a = safetyNumber({ version, localIdentifier: ALICE, localKey: ALICE_IDENTITY, remoteIdentifier: BOB, remoteKey: BOB_IDENTITY });
      const b = safetyNumber({ version, localIdentifier: BOB, localKey: BOB_IDENTITY, remoteIdentifier: ALICE, remoteKey: ALICE_IDENTITY });
      expect(a.digits).toBe(DISPLAY);
      expect(b.digits).toBe(DISPLAY);
      expect(bytesToHex(a.scannable)).toBe(aliceScannable);
      expect(bytesToHex(b.scannable)).toBe(bobScannable);
      expect(compareScannableFingerprints(a.scannable, b.scannable)).toBe(true);
      expect(compareScannableFingerprints(b.scannable, a.scannable)).toBe(true);
      expect(compareScannableFingerprints(a.scannable, a.scannable)).toBe(false);
    });
  }

  it("the halves: each side's 30 digits from its own hash", () => {
    const alice = fingerprintDigits(fingerprintHash(ALICE, ALICE_IDENTITY));
    const bob = fingerprintDigits(fingerprintHash(BOB, BOB_IDENTITY));
    expect([alice, bob].sort().join("")).toBe(DISPLAY);
    expect(bytesToHex(fingerprintHash(ALICE, ALICE_IDENTITY).subarray(0, 32))).toBe(ALICE_SCANNABLE_V1.slice(12, 76));
  });
});

describe("safety numbers: encodings and helpers", () => {
  it("scannable encoding matches libsignal's fixed layout", () => {
    const encoded = encodeScannableFingerprint(2, new Uint8Array(32).fill(0x12), new Uint8Array(32).fill(0xba));
    expect(bytesToHex(encoded)).toBe("080212220a20" + "12".repeat(32) + "1a220a20" + "ba".repeat(32));
    expect(parseScannableFingerprint(encoded)).toEqual({ version: 2, local: new Uint8Array(32).fill(0x12), remote: new Uint8Array(32).fill(0xba) });
  });

  it("a mismatched version is an error, not a mismatch; incomplete input is a parsing error", () => {
    const v1 = hexToBytes(ALICE_SCANNABLE_V1);
    const v2 = hexToBytes(BOB_SCANNABLE_V2);
    expect(() => compareScannableFingerprints(v1, v2)).toThrow(FingerprintVersionMismatchError);
    expect(() => compareScannableFingerprints(v2, Uint8Array.of(0x08, 0x02))).toThrow(FingerprintParsingError);
    expect(() => compareScannableFingerprints(v2, Uint8Array.of(0x0a, 0x05))).toThrow(FingerprintParsingError);
    expect(() => compareScannableFingerprints(Uint8Array.of(0x08, 0x02), v2)).toThrow(FingerprintParsingError);
  });

  it("a different key or identifier on either side gives a different number", () => {
    const [a, b, m] = [generateKeyPair(), generateKeyPair(), generateKeyPair()];
    const [ida, idb] = [userIdIdentifier(crypto.randomUUID()), userIdIdentifier(crypto.randomUUID())];
    const iterations = 1024;
    const honest = safetyNumber({ iterations, localIdentifier: ida, localKey: a.publicKey, remoteIdentifier: idb, remoteKey: b.publicKey });
    const mitm = safetyNumber({ iterations, localIdentifier: ida, localKey: a.publicKey, remoteIdentifier: idb, remoteKey: m.publicKey });
    const otherId = safetyNumber({ iterations, localIdentifier: ida, localKey: a.publicKey, remoteIdentifier: ida, remoteKey: b.publicKey });
    const bob = safetyNumber({ iterations, localIdentifier: idb, localKey: b.publicKey, remoteIdentifier: ida, remoteKey: a.publicKey });
    expect(safetyNumbersEqual(honest.digits, bob.digits)).toBe(true);
    expect(safetyNumbersEqual(mitm.digits, bob.digits)).toBe(false);
    expect(safetyNumbersEqual(otherId.digits, bob.digits)).toBe(false);
    expect(compareScannableFingerprints(bob.scannable, mitm.scannable)).toBe(false);
    expect(compareScannableFingerprints(bob.scannable, honest.scannable)).toBe(true);
  });

  it("formats in twelve groups of five and compares ignoring spaces", () => {
    const formatted = formatSafetyNumber(DISPLAY);
    expect(formatted).toBe("30035 44776 92869 39689 28698 76765 45825 75691 62576 84344 09180 79131");
    expect(formatSafetyNumber(formatted)).toBe(formatted);
    expect(safetyNumbersEqual(formatted, DISPLAY)).toBe(true);
    expect(safetyNumbersEqual(DISPLAY, DISPLAY.slice(0, 59) + "2")).toBe(false);
    expect(safetyNumbersEqual(DISPLAY.slice(1), DISPLAY.slice(1))).toBe(false);
    expect(safetyNumbersEqual("", "")).toBe(false);
  });

  it("identifiers: a user id is its 16 UUID bytes", () => {
    expect(bytesToHex(userIdIdentifier("8C5E3F4A-1B2C-4D5E-8F90-A1B2C3D4E5F6"))).toBe("8c5e3f4a1b2c4d5e8f90a1b2c3d4e5f6");
    expect(() => userIdIdentifier("alice")).toThrow(TypeError);
  });

  it("refuses bad keys and iteration counts as libsignal does", () => {
    expect(() => fingerprintHash(ALICE, ALICE_IDENTITY.subarray(1))).toThrow(KeyFormatError);
    expect(() => fingerprintHash(ALICE, ALICE_IDENTITY, 1)).toThrow(RangeError);
    expect(() => fingerprintHash(ALICE, ALICE_IDENTITY, 1_000_001)).toThrow(RangeError);
    expect(fingerprintHash(ALICE, ALICE_IDENTITY, 2)).toHaveLength(64);
  });
});
