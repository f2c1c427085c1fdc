/**
 * Our 1:1 sessions (client/crypto) against Signal's own library, @signalapp/libsignal-client 0.103 (the
 * oracle): sessions started by either side from the other's bundle, long conversations with DH ratchet
 * steps, out-of-order and dropped messages, libsignal's skip limits, and refusals on both sides.
 */
import { PreKeyBundle as LibPreKeyBundle, PublicKey } from "@signalapp/libsignal-client";
import { describe, expect, it } from "vitest";
import {
  DuplicateMessageError,
  InvalidMessageError,
  InvalidSignatureError,
  decrypt,
  encrypt,
  processPreKeyBundle,
  type CiphertextMessage,
  type PreKeyBundle,
} from "../../../client/crypto";
import { decodeSignalMessage, encodeSignalMessage } from "../../../client/crypto/messages";
import { ratchetEncrypt } from "../../../client/crypto/ratchet";
import { SessionRecord } from "../../../client/crypto/session-record";
import { LibsignalDevice, RelayDevice, text, utf8 } from "./libsignal-stores";

type Side = {
  name: string;
  send(plaintext: Uint8Array): Promise<CiphertextMessage>;
  receive(message: CiphertextMessage): Promise<Uint8Array>;
};

/** Our device and a libsignal device wired to each other. */
function pair() {
  const ours = new RelayDevice();
  const lib = new LibsignalDevice();
  const relaySide: Side = {
    name: "relay",
    send: (p) => encrypt(ours.store, lib.address, p),
    receive: (m) => decrypt(ours.store, lib.address, m),
  };
  const libSide: Side = {
    name: "libsignal",
    send: (p) => lib.encrypt(ours.address, p),
    receive: (m) => lib.decrypt(ours.address, m),
  };
  return { ours, lib, relaySide, libSide };
}

/** Starts a session with `initiator` processing the other's bundle. */
async function start(initiator: "relay" | "libsignal", oneTime: boolean) {
  const p = pair();
  if (initiator === "relay") await processPreKeyBundle(p.ours.store, p.lib.address, p.lib.bundle(oneTime));
  else await p.lib.processBundle(p.ours.address, p.ours.bundle(oneTime));
  const [a, b] = initiator === "relay" ? [p.relaySide, p.libSide] : [p.libSide, p.relaySide];
  return { ...p, a, b };
}

const randomText = (i: number) => `message ${i} ` + "x".repeat((i * 37) % 300);

/** `turns` turns; in each, one side sends 1–3 messages the other reads in order. Returns the message types seen. */
async function converse(a: Side, b: Side, turns: number): Promise<number[]> {
  const types: number[] = [];
  for (let turn = 0; turn < turns; turn++) {
    const [from, to] = turn % 2 === 0 ? [a, b] : [b, a];
    const burst = 1 + (turn % 3);
    for (let i = 0; i < burst; i++) {
      const plaintext = randomText(turn * 10 + i);
      const message = await from.send(utf8(plaintext));
      types.push(message.type);
      expect(text(await to.receive(message)), `${from.name} → ${to.name}, turn ${turn}`).toBe(plaintext);
    }
  }
  return types;
}

describe("sessions with libsignal", () => {
  for (const initiator of ["relay", "libsignal"] as const) {
    for (const oneTime of [true, false]) {
      it(`${initiator} starts from the other's bundle ${oneTime ? "with" : "without"} a one-time prekey; 60 turns each way`, async () => {
        const { a, b, ours, lib } = await start(initiator, oneTime);
        const types = await converse(a, b, 120);
        // PreKeySignalMessages until the first answer, SignalMessages after.
        expect(types[0]).toBe(3);
        expect(types.slice(1).every((t) => t === 2)).toBe(true);
        expect(types.length).toBe(240);
        // The responder used its prekeys as libsignal does: one-time keys gone, the last-resort Kyber key kept.
        if (initiator === "libsignal") {
          expect(ours.store.preKeys.has(1)).toBe(!oneTime);
          expect(ours.store.kyberPreKeys.has(1)).toBe(!oneTime);
          expect(ours.store.kyberPreKeys.has(ours.keys.kyberLastResortPreKey.keyId)).toBe(true);
        } else {
          expect(lib.preKeys.keys.has(1)).toBe(!oneTime);
          expect(lib.kyberPreKeys.used).toEqual([oneTime ? 1 : 4]);
        }
      });
    }
  }

  it("the initiator keeps sending PreKeySignalMessages until the responder answers", async () => {
    for (const initiator of ["relay", "libsignal"] as const) {
      const { a, b } = await start(initiator, true);
      for (let i = 0; i < 4; i++) {
        const m = await a.send(utf8(`early ${i}`));
        expect(m.type).toBe(3);
        expect(text(await b.receive(m))).toBe(`early ${i}`);
      }
      const answer = await b.send(utf8("answer"));
      expect(answer.type).toBe(2);
      await a.receive(answer);
      expect((await a.send(utf8("now plain"))).type).toBe(2);
    }
  });

  for (const receiverName of ["relay", "libsignal"] as const) {
    it(`${receiverName} reads out-of-order and dropped messages across DH ratchet steps`, async () => {
      const { relaySide, libSide } = await start(receiverName === "relay" ? "libsignal" : "relay", true);
      const [sender, receiver] = receiverName === "relay" ? [libSide, relaySide] : [relaySide, libSide];
      await receiver.receive(await sender.send(utf8("hello")));
      await sender.receive(await receiver.send(utf8("ack")));
      // Three chains from the sender (each after a reply), 8 messages each, delivered shuffled with some dropped.
      const held: { plaintext: string; message: CiphertextMessage }[] = [];
      for (let chain = 0; chain < 3; chain++) {
        for (let i = 0; i < 8; i++) {
          const plaintext = `chain ${chain} #${i}`;
          held.push({ plaintext, message: await sender.send(utf8(plaintext)) });
        }
        // The receiver reads one message of this chain and answers, so the next chain follows a DH step.
        const first = held.pop()!;
        expect(text(await receiver.receive(first.message))).toBe(first.plaintext);
        await sender.receive(await receiver.send(utf8(`reply ${chain}`)));
      }
      const order = held.map((_, i) => i).sort((x, y) => ((x * 7919) % 23) - ((y * 7919) % 23));
      const dropped = new Set(order.filter((_, i) => i % 5 === 0));
      for (const i of order) {
        if (dropped.has(i)) continue;
        expect(text(await receiver.receive(held[i]!.message))).toBe(held[i]!.plaintext);
      }
      // The conversation goes on both ways.
      await converse(sender, receiver, 6);
    });
  }

  it("at the forward-jump limit (25,000 in both chains) we accept and refuse exactly what libsignal does", async () => {
    // SPQR counts every message a sender ever sent, the DH chain only those of the current chain, so when
    // both are in step the SPQR jump is one larger: a chain jump of 24,999 passes, 25,000 fails SPQR's limit.
    for (const receiverName of ["relay", "libsignal"] as const) {
      const p = await start("relay", true);
      await p.b.receive(await p.a.send(utf8("hello")));
      await p.a.receive(await p.b.send(utf8("ack")));
      const receiver = receiverName === "relay" ? p.relaySide : p.libSide;
      const keep = new Map<number, CiphertextMessage>();
      const kept = [1_000, 23_500, 24_999, 25_000];
      if (receiverName === "libsignal") {
        // We send fast, straight on the ratchet state (skipping the store).
        const record = SessionRecord.deserialize((await p.ours.store.loadSession(p.lib.address))!);
        for (let i = 0; i <= 25_000; i++) {
          const body = ratchetEncrypt(record.current!, utf8(`n${i}`));
          if (kept.includes(i)) keep.set(i, { type: 2, body });
        }
      } else {
        for (let i = 0; i <= 25_000; i++) {
          const message = await p.libSide.send(utf8(`n${i}`));
          if (kept.includes(i)) keep.set(i, message);
        }
      }
      // We name the reason; libsignal logs it and throws a generic refusal.
      await expect(receiver.receive(keep.get(25_000)!)).rejects.toThrow(receiverName === "relay" ? /Key jump/ : /decryption failed/);
      expect(text(await receiver.receive(keep.get(24_999)!))).toBe("n24999");
      expect(text(await receiver.receive(keep.get(23_500)!))).toBe("n23500"); // within the 2,000 skipped keys kept
      await expect(receiver.receive(keep.get(1_000)!)).rejects.toThrow(/duplicate|old counter/i); // long dropped
      if (receiverName === "relay") await expect(receiver.receive(keep.get(1_000)!)).rejects.toThrow(DuplicateMessageError);
    }
  }, 120_000);

  it("libsignal keeps 2,000 skipped keys per chain, as we do", async () => {
    for (const receiverName of ["relay", "libsignal"] as const) {
      const p = await start("relay", true);
      const [sender, receiver] = receiverName === "relay" ? [p.libSide, p.relaySide] : [p.relaySide, p.libSide];
      await p.b.receive(await p.a.send(utf8("hello")));
      await p.a.receive(await p.b.send(utf8("ack")));
      const sent: CiphertextMessage[] = [];
      for (let i = 0; i < 2_101; i++) sent.push(await sender.send(utf8(`m${i}`)));
      expect(text(await receiver.receive(sent[2_100]!))).toBe("m2100");
      // Skipped: 0..2099; the newest 2,000 (100..2099) are kept.
      expect(text(await receiver.receive(sent[100]!))).toBe("m100");
      expect(text(await receiver.receive(sent[2_099]!))).toBe("m2099");
      await expect(receiver.receive(sent[99]!)).rejects.toThrow(/duplicate|old counter/i);
      await expect(receiver.receive(sent[0]!)).rejects.toThrow(/duplicate|old counter/i);
    }
  }, 60_000);

  it("simultaneous initiation: both start a session at once and converge", async () => {
    const p = pair();
    await processPreKeyBundle(p.ours.store, p.lib.address, p.lib.bundle(true));
    await p.lib.processBundle(p.ours.address, p.ours.bundle(true));
    const fromUs = await p.relaySide.send(utf8("hi from relay"));
    const fromLib = await p.libSide.send(utf8("hi from libsignal"));
    expect([fromUs.type, fromLib.type]).toEqual([3, 3]);
    expect(text(await p.libSide.receive(fromUs))).toBe("hi from relay");
    expect(text(await p.relaySide.receive(fromLib))).toBe("hi from libsignal");
    await converse(p.relaySide, p.libSide, 10);
    await converse(p.libSide, p.relaySide, 10);
  });

  describe("refusals", () => {
    const flip = (bytes: Uint8Array, index: number) => bytes.map((b, i) => (i === index ? b ^ 0x01 : b));

    it("both refuse a bundle with a bad signed-prekey signature", async () => {
      const p = pair();
      const libBundle = p.lib.bundle(true);
      await expect(processPreKeyBundle(p.ours.store, p.lib.address, { ...libBundle, signedPreKeySignature: flip(libBundle.signedPreKeySignature, 5) })).rejects.toThrow(
        InvalidSignatureError,
      );
      const ourBundle = p.ours.bundle(true);
      await expect(p.lib.processBundle(p.ours.address, { ...ourBundle, signedPreKeySignature: flip(ourBundle.signedPreKeySignature, 5) })).rejects.toThrow(/signature/i);
      // A signature by another identity is refused too.
      const other = new RelayDevice().bundle(false);
      await expect(processPreKeyBundle(p.ours.store, p.lib.address, { ...libBundle, signedPreKeySignature: other.signedPreKeySignature })).rejects.toThrow(
        "signed prekey signature does not verify",
      );
      expect(await p.ours.store.loadSession(p.lib.address)).toBeUndefined();
    });

    it("both refuse a bundle with a bad Kyber prekey signature", async () => {
      const p = pair();
      const libBundle = p.lib.bundle(true);
      await expect(processPreKeyBundle(p.ours.store, p.lib.address, { ...libBundle, kyberPreKeySignature: flip(libBundle.kyberPreKeySignature, 40) })).rejects.toThrow(
        "Kyber prekey signature does not verify",
      );
      const ourBundle = p.ours.bundle(true);
      await expect(p.lib.processBundle(p.ours.address, { ...ourBundle, kyberPreKeySignature: flip(ourBundle.kyberPreKeySignature, 40) })).rejects.toThrow(/signature/i);
      // The signed prekey's signature does not cover the Kyber key.
      const swapped: PreKeyBundle = { ...libBundle, kyberPreKeySignature: libBundle.signedPreKeySignature };
      await expect(processPreKeyBundle(p.ours.store, p.lib.address, swapped)).rejects.toThrow(InvalidSignatureError);
    });

    it("both refuse a bundle without a Kyber prekey (0.103 makes it mandatory)", async () => {
      const p = pair();
      const { kyberPreKeyId: _id, kyberPreKey: _key, kyberPreKeySignature: _sig, ...withoutKyber } = p.lib.bundle(true);
      await expect(processPreKeyBundle(p.ours.store, p.lib.address, withoutKyber as PreKeyBundle)).rejects.toThrow(/kyber/i);
      expect(await p.ours.store.loadSession(p.lib.address)).toBeUndefined();
      const ours = p.ours.bundle(true);
      const key = (bytes: Uint8Array) => PublicKey.deserialize(Uint8Array.from(bytes));
      expect(() =>
        LibPreKeyBundle.new(
          ours.registrationId,
          ours.deviceId,
          ours.preKeyId ?? null,
          ours.preKey ? key(ours.preKey) : null,
          ours.signedPreKeyId,
          key(ours.signedPreKey),
          Uint8Array.from(ours.signedPreKeySignature),
          key(ours.identityKey),
          ours.kyberPreKeyId,
          null as never,
          new Uint8Array(0),
        ),
      ).toThrow();
    });

    for (const receiverName of ["relay", "libsignal"] as const) {
      it(`${receiverName} refuses a flipped bit in the MAC or the ciphertext, and reads the genuine message after`, async () => {
        const p = await start(receiverName === "relay" ? "libsignal" : "relay", true);
        const [sender, receiver] = receiverName === "relay" ? [p.libSide, p.relaySide] : [p.relaySide, p.libSide];
        // A PreKeySignalMessage first: its inner MAC and body are refused too.
        const first = await sender.send(utf8("first"));
        expect(first.type).toBe(3);
        await expect(receiver.receive({ type: 3, body: flip(first.body, first.body.length - 1) })).rejects.toThrow();
        expect(text(await receiver.receive(first))).toBe("first");
        await sender.receive(await receiver.send(utf8("ack")));
        const message = await sender.send(utf8("genuine"));
        expect(message.type).toBe(2);
        const decoded = decodeSignalMessage(message.body);
        const macAt = message.body.length - 1;
        const ciphertextAt = message.body.findIndex((_, i) => i > 40 && message.body.subarray(i, i + decoded.ciphertext.length).every((b, k) => b === decoded.ciphertext[k]));
        expect(ciphertextAt).toBeGreaterThan(0);
        for (const at of [macAt, macAt - 7, ciphertextAt, ciphertextAt + decoded.ciphertext.length - 1]) {
          const tampered = { type: 2 as const, body: flip(message.body, at) };
          const refusal = receiver.receive(tampered);
          if (receiverName === "relay") await expect(refusal).rejects.toThrow(InvalidMessageError);
          else await expect(refusal).rejects.toThrow();
        }
        expect(text(await receiver.receive(message))).toBe("genuine");
      });

      it(`${receiverName} refuses a replayed message (SignalMessage and PreKeySignalMessage)`, async () => {
        const p = await start(receiverName === "relay" ? "libsignal" : "relay", true);
        const [sender, receiver] = receiverName === "relay" ? [p.libSide, p.relaySide] : [p.relaySide, p.libSide];
        const first = await sender.send(utf8("first"));
        await receiver.receive(first);
        await expect(receiver.receive(first)).rejects.toThrow(/duplicate|old counter/i);
        await sender.receive(await receiver.send(utf8("ack")));
        const second = await sender.send(utf8("second"));
        const third = await sender.send(utf8("third"));
        await receiver.receive(third);
        await receiver.receive(second);
        await expect(receiver.receive(second)).rejects.toThrow(/duplicate|old counter/i);
        await expect(receiver.receive(third)).rejects.toThrow(/duplicate|old counter/i);
        if (receiverName === "relay") await expect(receiver.receive(third)).rejects.toThrow(DuplicateMessageError);
        // The session still works both ways.
        await converse(sender, receiver, 4);
      });
    }

    it("both refuse a PreKeySignalMessage whose bound addresses name another sender", async () => {
      const p = await start("libsignal", true);
      const m = await p.libSide.send(utf8("to relay"));
      await expect(decrypt(p.ours.store, { ...p.lib.address, deviceId: 2 }, m)).rejects.toThrow(/addresses/);
      const q = await start("relay", true);
      const ours = await q.relaySide.send(utf8("to libsignal"));
      await expect(q.lib.decrypt({ ...q.ours.address, deviceId: 2 }, ours)).rejects.toThrow();
      expect(text(await q.lib.decrypt(q.ours.address, ours))).toBe("to libsignal");
    });

    it("libsignal refuses a message with an empty pq_ratchet, and so do we", async () => {
      const p = await start("relay", true);
      await p.libSide.receive(await p.relaySide.send(utf8("hello")));
      await p.relaySide.receive(await p.libSide.send(utf8("ack")));
      const strip = (m: CiphertextMessage) => {
        const d = decodeSignalMessage(m.body);
        const identity = new Uint8Array(33);
        return { type: 2 as const, body: encodeSignalMessage({ ...d, pqRatchet: new Uint8Array(0) }, new Uint8Array(32), identity, identity) };
      };
      // libsignal logs the reason ("post-quantum ratchet error: Minimum version") and throws a generic refusal.
      await expect(p.libSide.receive(strip(await p.relaySide.send(utf8("no pq"))))).rejects.toThrow(/decryption failed/);
      await expect(p.relaySide.receive(strip(await p.libSide.send(utf8("no pq"))))).rejects.toThrow(/post-quantum ratchet error: Minimum version/);
    });
  });
});
