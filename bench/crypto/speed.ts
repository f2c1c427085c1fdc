/**
 * Crypto speed of Relay's SDK beside libsignal's native library, same machine, same run: 1:1 session setup,
 * 1:1 encrypt and decrypt (SignalMessage), group encrypt and decrypt (sender keys). Prints one JSON row per
 * (peer, operation) on stdout, in the bench's result-row shape. Run through `bench/crypto/run.mjs`.
 */
import {
  SenderKeyDistributionMessage,
  groupDecrypt as libGroupDecrypt,
  groupEncrypt as libGroupEncrypt,
  processSenderKeyDistributionMessage as libProcessDistribution,
} from "@signalapp/libsignal-client";
import { decrypt, encrypt, processPreKeyBundle } from "../../client/crypto";
import {
  InMemorySenderKeyStore,
  createSenderKeyDistributionMessage,
  groupDecrypt,
  groupEncrypt,
  newDistributionId,
  processSenderKeyDistributionMessage,
} from "../../client/crypto/sender-keys";
import { LibsignalDevice, RelayDevice, newAddress } from "../../test/node/client/libsignal-stores";
import { LibsignalSenderKeyStore, protocolAddress } from "../../test/node/client/libsignal-sender-key-store";

const count = Number(process.argv[process.argv.indexOf("--n") + 1]) || 300;
const plaintext = new Uint8Array(100).fill(7);


/** Runs `op` `n` times; returns ops/s and per-op latency percentiles. */
async function measure(n: number, op: (i: number) => Promise<unknown>) {
  const times: number[] = [];
  const started = performance.now();
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await op(i);
    times.push(performance.now() - t);
  }
  const total = performance.now() - started;
  times.sort((a, b) => a - b);
  const at = (q: number) => Number(times[Math.min(times.length - 1, Math.floor(q * times.length))]!.toFixed(3));
  return { throughput: Number(((n * 1000) / total).toFixed(1)), latency_ms: { p50: at(0.5), p99: at(0.99), p999: at(0.999) } };
}

function row(peer: string, op: string, result: Awaited<ReturnType<typeof measure>>) {
  const rss = process.memoryUsage().rss / 1048576;
  console.log(JSON.stringify({ workload: "crypto", peer, params: { op, bytes: plaintext.length }, status: "ok", ...result, cpu: null, rss_mb: Number(rss.toFixed(1)), fds: null }));
}

/** 1:1 sessions: setup (bundle → first message → responder decrypts), then ratchet messages one way. */
async function oneToOne(peer: "relay-sdk" | "libsignal") {
  const make = () => (peer === "relay-sdk" ? new RelayDevice(newAddress(), { preKeys: 1, kyberPreKeys: 1 }) : new LibsignalDevice(newAddress(), { preKeys: 1, kyberPreKeys: 1 }));
  const pairs = Array.from({ length: Math.max(20, Math.floor(count / 10)) }, () => [make(), make()] as const);
  const setupEncrypt = async (a: (typeof pairs)[number][0], b: (typeof pairs)[number][1]) => {
    if (a instanceof RelayDevice && b instanceof RelayDevice) {
      await processPreKeyBundle(a.store, b.address, b.bundle(true));
      const first = await encrypt(a.store, b.address, plaintext);
      await decrypt(b.store, a.address, first);
    } else if (a instanceof LibsignalDevice && b instanceof LibsignalDevice) {
      await a.processBundle(b.address, b.bundle(true));
      await b.decrypt(a.address, await a.encrypt(b.address, plaintext));
    }
  };
  row(peer, "session setup (both sides)", await measure(pairs.length, (i) => setupEncrypt(pairs[i]![0], pairs[i]![1])));

  const [a, b] = pairs[0]!;
  // One reply so the initiator sends plain SignalMessages from here on.
  const enc = (from: typeof a, to: typeof a) =>
    from instanceof RelayDevice ? encrypt(from.store, to.address, plaintext) : (from as LibsignalDevice).encrypt(to.address, plaintext);
  const dec = (at: typeof a, from: typeof a, m: Awaited<ReturnType<typeof enc>>) =>
    at instanceof RelayDevice ? decrypt(at.store, from.address, m) : (at as LibsignalDevice).decrypt(from.address, m);
  await dec(a, b, await enc(b, a));
  const sent: Awaited<ReturnType<typeof enc>>[] = [];
  row(peer, "1:1 encrypt", await measure(count, async () => sent.push(await enc(a, b))));
  row(peer, "1:1 decrypt", await measure(count, (i) => dec(b, a, sent[i]!)));
}

/** Sender keys: one distribution, then group messages one way. */
async function group(peer: "relay-sdk" | "libsignal") {
  const sender = newAddress();
  const distributionId = newDistributionId();
  const messages: Uint8Array[] = [];
  if (peer === "relay-sdk") {
    const senderStore = new InMemorySenderKeyStore();
    const receiverStore = new InMemorySenderKeyStore();
    await processSenderKeyDistributionMessage(sender, await createSenderKeyDistributionMessage(sender, distributionId, senderStore), receiverStore);
    row(peer, "group encrypt", await measure(count, async () => messages.push(await groupEncrypt(sender, distributionId, senderStore, plaintext))));
    row(peer, "group decrypt", await measure(count, (i) => groupDecrypt(sender, receiverStore, messages[i]!)));
  } else {
    const senderStore = new LibsignalSenderKeyStore();
    const receiverStore = new LibsignalSenderKeyStore();
    const address = protocolAddress(sender);
    const distribution = await SenderKeyDistributionMessage.create(address, distributionId, senderStore);
    await libProcessDistribution(address, SenderKeyDistributionMessage.deserialize(distribution.serialize()), receiverStore);
    row(peer, "group encrypt", await measure(count, async () => messages.push((await libGroupEncrypt(address, distributionId, senderStore, Uint8Array.from(plaintext))).serialize())));
    row(peer, "group decrypt", await measure(count, (i) => libGroupDecrypt(address, receiverStore, Uint8Array.from(messages[i]!))));
  }
}

for (const peer of ["relay-sdk", "libsignal"] as const) {
  await oneToOne(peer);
  await group(peer);
}
