/**
 * client/crypto/messages.ts: SignalMessage and PreKeySignalMessage bytes equal libsignal's, and malformed
 * input is refused with a message that says what is wrong.
 */
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { PreKeySignalMessage, PrivateKey, SignalMessage } from "@signalapp/libsignal-client";
import { describe, expect, it } from "vitest";
import { InvalidMessageError, encrypt, processPreKeyBundle } from "../../../client/crypto";
import { encodeAddresses, serviceIdFixedWidth } from "../../../client/crypto/address";
import {
  decodePreKeySignalMessage,
  decodeSignalMessage,
  encodePreKeySignalMessage,
  encodeSignalMessage,
  verifySignalMessageMac,
} from "../../../client/crypto/messages";
import { ab, LibsignalDevice, RelayDevice, utf8 } from "./libsignal-stores";

const random = (n: number) => crypto.getRandomValues(new Uint8Array(n));
const key = () => PrivateKey.generate().getPublicKey();

describe("SignalMessage", () => {
  it("encodes byte for byte as libsignal's SignalMessage._new, MAC included", () => {
    for (const counter of [0, 1, 300, 0xffff_ffff]) {
      const [ratchet, sender, receiver] = [key(), key(), key()];
      const macKey = random(32);
      const ciphertext = random(48);
      const pq = Uint8Array.from([1, 1, 7, 0]);
      const lib = SignalMessage._new(4, ab(macKey), ratchet, counter, 5, ab(ciphertext), sender, receiver, ab(pq)).serialize();
      const ours = encodeSignalMessage(
        { ratchetKey: ratchet.serialize(), counter, previousCounter: 5, ciphertext, pqRatchet: pq },
        macKey,
        sender.serialize(),
        receiver.serialize(),
      );
      expect(ours).toEqual(lib);
      const decoded = decodeSignalMessage(lib);
      expect(decoded).toMatchObject({ counter, previousCounter: 5, ciphertext, pqRatchet: pq });
      expect(verifySignalMessageMac(decoded, macKey, sender.serialize(), receiver.serialize())).toBe(true);
      expect(verifySignalMessageMac(decoded, macKey, receiver.serialize(), sender.serialize())).toBe(false);
      expect(SignalMessage.deserialize(ab(ours)).counter()).toBe(counter);
    }
  });

  it("refuses malformed bytes, saying why", () => {
    const good = encodeSignalMessage({ ratchetKey: key().serialize(), counter: 1, previousCounter: 0, ciphertext: random(16), pqRatchet: Uint8Array.of(1, 1, 1, 0) }, random(32), random(33), random(33));
    const protobuf = (build: (w: BinaryWriter) => void) => {
      const w = new BinaryWriter();
      w.raw(Uint8Array.of(0x44));
      build(w);
      w.raw(new Uint8Array(8));
      return w.finish();
    };
    const cases: [Uint8Array, string | RegExp][] = [
      [new Uint8Array(0), "SignalMessage too short (0 bytes)"],
      [good.subarray(0, 8), "SignalMessage too short (8 bytes)"],
      [good.map((b, i) => (i === 0 ? 0x33 : b)), "SignalMessage has version 3 (X3DH, no longer supported)"],
      [good.map((b, i) => (i === 0 ? 0x22 : b)), "SignalMessage has legacy version 2"],
      [good.map((b, i) => (i === 0 ? 0x54 : b)), "SignalMessage has unsupported version byte 0x54"],
      [protobuf((w) => w.tag(2, WireType.Varint).uint32(1).tag(4, WireType.LengthDelimited).bytes(random(16))), "SignalMessage has no ratchet key"],
      [protobuf((w) => w.tag(1, WireType.LengthDelimited).bytes(key().serialize()).tag(4, WireType.LengthDelimited).bytes(random(16))), "SignalMessage has no counter"],
      [protobuf((w) => w.tag(1, WireType.LengthDelimited).bytes(key().serialize()).tag(2, WireType.Varint).uint32(1)), "SignalMessage has no ciphertext"],
      [protobuf((w) => w.tag(1, WireType.LengthDelimited).bytes(random(32)).tag(2, WireType.Varint).uint32(1).tag(4, WireType.LengthDelimited).bytes(random(16))), "SignalMessage ratchet key must be a 33-byte key starting with 0x05"],
      [protobuf((w) => w.tag(2, WireType.LengthDelimited).bytes(random(3))), "SignalMessage field 2 has the wrong protobuf wire type"],
      [protobuf((w) => w.raw(Uint8Array.of(0x0a, 0x50, 1, 2))), /SignalMessage: invalid protobuf encoding/],
    ];
    for (const [bytes, reason] of cases) {
      expect(() => decodeSignalMessage(bytes)).toThrow(InvalidMessageError);
      expect(() => decodeSignalMessage(bytes)).toThrow(reason);
    }
    // Unknown fields are skipped, as protobuf requires.
    const extra = protobuf((w) => w.tag(1, WireType.LengthDelimited).bytes(key().serialize()).tag(2, WireType.Varint).uint32(3).tag(4, WireType.LengthDelimited).bytes(random(16)).tag(9, WireType.Varint).uint32(1));
    expect(decodeSignalMessage(extra).counter).toBe(3);
  });
});

describe("PreKeySignalMessage", () => {
  it("our PreKeySignalMessages parse in libsignal, and libsignal's re-encode byte for byte in ours", async () => {
    const relay = new RelayDevice();
    const lib = new LibsignalDevice();
    await processPreKeyBundle(relay.store, lib.address, lib.bundle(true));
    const ours = await encrypt(relay.store, lib.address, utf8("hi"));
    const parsed = PreKeySignalMessage.deserialize(ab(ours.body));
    expect([parsed.preKeyId(), parsed.signedPreKeyId(), parsed.registrationId(), parsed.version()]).toEqual([1, 1, relay.keys.registrationId, 4]);

    const other = new RelayDevice();
    await lib.processBundle(other.address, other.bundle(false));
    const theirs = await lib.encrypt(other.address, utf8("hello"));
    const decoded = decodePreKeySignalMessage(theirs.body);
    expect(decoded.preKeyId).toBeUndefined();
    expect(decoded.kyberPreKeyId).toBe(other.keys.kyberLastResortPreKey.keyId);
    expect(decoded.identityKey).toEqual(lib.identityKey);
    expect(decoded.message.addresses).toEqual(encodeAddresses(lib.address, other.address));
    expect(encodePreKeySignalMessage({ ...decoded, message: decoded.message.serialized })).toEqual(theirs.body);
  });

  it("refuses malformed bytes, saying why", () => {
    const inner = encodeSignalMessage({ ratchetKey: key().serialize(), counter: 0, previousCounter: 0, ciphertext: random(16), pqRatchet: Uint8Array.of(1, 1, 1, 0) }, random(32), random(33), random(33));
    const fields = { registrationId: 7, signedPreKeyId: 1, kyberPreKeyId: 2, kyberCiphertext: Uint8Array.from({ length: 1569 }, (_, i) => (i === 0 ? 8 : i)), baseKey: key().serialize(), identityKey: key().serialize(), message: inner };
    expect(decodePreKeySignalMessage(encodePreKeySignalMessage(fields)).registrationId).toBe(7);
    const without = (field: number) => {
      const full = encodePreKeySignalMessage(fields);
      const w = new BinaryWriter();
      w.raw(Uint8Array.of(0x44));
      const d = decodePreKeySignalMessage(full);
      if (field !== 2) w.tag(2, WireType.LengthDelimited).bytes(d.baseKey);
      if (field !== 3) w.tag(3, WireType.LengthDelimited).bytes(d.identityKey);
      if (field !== 4) w.tag(4, WireType.LengthDelimited).bytes(d.message.serialized);
      if (field !== 6) w.tag(6, WireType.Varint).uint32(1);
      if (field !== 7) w.tag(7, WireType.Varint).uint32(2);
      if (field !== 8) w.tag(8, WireType.LengthDelimited).bytes(d.kyberCiphertext);
      return w.finish();
    };
    const cases: [Uint8Array, string][] = [
      [new Uint8Array(0), "PreKeySignalMessage is empty"],
      [without(2), "PreKeySignalMessage has no base key"],
      [without(3), "PreKeySignalMessage has no identity key"],
      [without(4), "PreKeySignalMessage has no inner message"],
      [without(6), "PreKeySignalMessage has no signed prekey id"],
      [without(7), "PreKeySignalMessage must carry both or neither Kyber prekey id and ciphertext"],
      [encodePreKeySignalMessage({ ...fields, kyberCiphertext: fields.kyberCiphertext.subarray(0, 1568) }), "PreKeySignalMessage Kyber ciphertext must be 1569 bytes starting with 0x08"],
      [encodePreKeySignalMessage({ ...fields, baseKey: random(33).fill(6, 0, 1) }), "PreKeySignalMessage base key must be a 33-byte key starting with 0x05"],
      [encodePreKeySignalMessage({ ...fields, message: inner.subarray(0, 5) }), "SignalMessage too short (5 bytes)"],
      [encodePreKeySignalMessage(fields).map((b, i) => (i === 0 ? 0x34 : b)), "PreKeySignalMessage has version 3 (X3DH, no longer supported)"],
    ];
    const noKyber = (() => {
      const w = new BinaryWriter();
      w.raw(Uint8Array.of(0x44)).tag(2, WireType.LengthDelimited).bytes(fields.baseKey).tag(3, WireType.LengthDelimited).bytes(fields.identityKey).tag(4, WireType.LengthDelimited).bytes(inner).tag(6, WireType.Varint).uint32(1);
      return w.finish();
    })();
    cases.push([noKyber, "PreKeySignalMessage has no Kyber prekey (required for version 4)"]);
    for (const [bytes, reason] of cases) {
      expect(() => decodePreKeySignalMessage(bytes)).toThrow(InvalidMessageError);
      expect(() => decodePreKeySignalMessage(bytes)).toThrow(reason);
    }
  });
});

describe("addresses", () => {
  it("encode service ids as libsignal does (ACI 0x00 ‖ UUID, PNI 0x01 ‖ UUID; others none)", () => {
    const uuid = "9d0652a3-dcc3-4d11-975f-74d61598733f";
    expect(Array.from(serviceIdFixedWidth(uuid)!)).toEqual([0, ...Buffer.from(uuid.replace(/-/g, ""), "hex")]);
    expect(serviceIdFixedWidth(uuid.toUpperCase())).toEqual(serviceIdFixedWidth(uuid));
    expect(serviceIdFixedWidth(`PNI:${uuid}`)![0]).toBe(1);
    for (const notOne of ["alice", uuid.replace(/-/g, ""), `{${uuid}}`, `ACI:${uuid}`]) expect(serviceIdFixedWidth(notOne)).toBeUndefined();
    const a = encodeAddresses({ userId: uuid, deviceId: 3 }, { userId: `PNI:${uuid}`, deviceId: 127 })!;
    expect(a.length).toBe(36);
    expect([a[17], a[18], a[35]]).toEqual([3, 1, 127]);
    expect(encodeAddresses({ userId: "alice", deviceId: 1 }, { userId: uuid, deviceId: 1 })).toBeUndefined();
  });
});
