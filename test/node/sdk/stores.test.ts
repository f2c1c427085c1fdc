/**
 * Every RelayStore implementation keeps the same contract: records round-trip with their bytes, ranges
 * list in key order, a write batch is atomic, copies are never shared, and (SQLite, IndexedDB) data
 * survives reopening.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { IDBFactory } from "fake-indexeddb";
import "fake-indexeddb/auto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IndexedDbStore, MemoryStore, SqliteStore, type RelayStore } from "../../../client/node";
import { put } from "../../../client/store/types";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "relay-sdk-stores-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const implementations: { name: string; open(): Promise<RelayStore>; reopen?: () => Promise<RelayStore> }[] = [
  { name: "MemoryStore", open: async () => new MemoryStore() },
  (() => {
    const factory = new IDBFactory();
    const name = `relay-${crypto.randomUUID()}`;
    return { name: "IndexedDbStore", open: () => IndexedDbStore.open(name, factory), reopen: () => IndexedDbStore.open(name, factory) };
  })(),
  (() => {
    let path = "";
    return {
      name: "SqliteStore",
      open: async () => new SqliteStore((path = join(dir, `${crypto.randomUUID()}.db`))),
      reopen: async () => new SqliteStore(path),
    };
  })(),
];

describe.each(implementations)("$name", ({ open, reopen }) => {
  it("round-trips records with bytes and returns copies", async () => {
    const store = await open();
    const key = crypto.getRandomValues(new Uint8Array(33));
    await store.write([put("identities", "u.1", { key, trustedAt: 5 }), put("sessions", "u.1", new Uint8Array([1, 2, 3]))]);
    const read = await store.get("identities", "u.1");
    expect(read).toEqual({ key, trustedAt: 5 });
    expect(read!.key).toBeInstanceOf(Uint8Array);
    read!.key[0] = 0;
    expect((await store.get("identities", "u.1"))!.key).toEqual(key);
    expect(await store.get("sessions", "u.1")).toEqual(new Uint8Array([1, 2, 3]));
    expect(await store.get("sessions", "u.2")).toBeUndefined();
    await store.write([put("sessions", "u.1", undefined)]);
    expect(await store.get("sessions", "u.1")).toBeUndefined();
    await store.close();
  });

  it("lists ranges in key order: prefix, after, before, limit, reverse; tables are separate", async () => {
    const store = await open();
    const keys = ["a|2", "a|1", "b|1", "a|3", "ab|1"];
    await store.write(keys.map((k, i) => put("kyberUses", k, i)));
    await store.write([put("preKeys", "a|0", { keyPair: { publicKey: new Uint8Array(1), privateKey: new Uint8Array(1) }, createdAt: 1 })]);
    const list = async (range: Parameters<RelayStore["list"]>[1]) => (await store.list("kyberUses", range)).map((e) => e.key);
    expect(await list({})).toEqual(["ab|1", "a|1", "a|2", "a|3", "b|1"]); // code-unit order: "|" sorts after letters
    expect(await list({ prefix: "a|" })).toEqual(["a|1", "a|2", "a|3"]);
    expect(await list({ prefix: "a|", after: "a|1" })).toEqual(["a|2", "a|3"]);
    expect(await list({ prefix: "a|", before: "a|3" })).toEqual(["a|1", "a|2"]);
    expect(await list({ prefix: "a|", reverse: true, limit: 2 })).toEqual(["a|3", "a|2"]);
    expect(await list({ prefix: "a|", limit: 0 })).toEqual([]);
    expect((await store.list("kyberUses", { prefix: "b|" }))[0]).toEqual({ key: "b|1", value: 2 });
    await store.clear();
    expect(await list({})).toEqual([]);
    expect(await store.list("preKeys")).toEqual([]);
    await store.close();
  });

  it("applies a write batch whole or not at all", async () => {
    const store = await open();
    await store.write([put("kyberUses", "kept", 1)]);
    const poisoned = [put("kyberUses", "kept", 2), put("kyberUses", "new", 3), put("kyberUses", "bad", (() => 1) as unknown as number)];
    await expect(store.write(poisoned)).rejects.toThrow();
    expect(await store.get("kyberUses", "kept")).toBe(1);
    expect(await store.get("kyberUses", "new")).toBeUndefined();
    await store.close();
  });

  it.runIf(reopen)("keeps everything across close and reopen", async () => {
    const store = await open();
    await store.write([put("messageIndex", "x", "y")]);
    await store.close();
    const again = await reopen!();
    expect(await again.get("messageIndex", "x")).toBe("y");
    await again.close();
  });

  it("keeps group state, sender-key tracking, channel keys, cursors, history and the group outbox (across reopening too)", async () => {
    const groupId = crypto.randomUUID();
    const me = { userId: crypto.randomUUID(), role: "admin" as const, since: 1 };
    const channelKey = crypto.getRandomValues(new Uint8Array(32));
    const ops = [
      put("groups", groupId, { groupId, kind: "group", epoch: 3, seq: 9, fanout: "write", info: null, memberCount: 1, members: [me], you: me, stale: true }),
      put("groupSenderKeys", groupId, { distributionId: crypto.randomUUID(), epoch: 3, createdAt: 5, sentTo: [me.userId], rotate: true }),
      put("channelKeys", groupId, channelKey),
      put("signerKeys", `${me.userId}.1`, channelKey.slice(0, 33)),
      put("groupCursors", groupId, 57),
      put("groupHistory", `${groupId}|000000000000009`, { kind: "message", group: groupId, groupSeq: 9, from: me.userId, fromDevice: 1, id: "m", ts: 1, sentAt: 1, body: { bytes: channelKey }, direction: "outgoing" }),
      put("groupOutbox", "00000000000000001.m", { kind: "read", id: "r", group: groupId, seqs: [9] }),
    ];
    const check = async (store: RelayStore) => {
      for (const op of ops) expect(await store.get(op.table, op.key)).toEqual(op.value);
      expect(await store.get("channelKeys", groupId)).toBeInstanceOf(Uint8Array);
    };
    const store = await open();
    await store.write(ops);
    await check(store);
    await store.close();
    if (reopen) {
      const again = await reopen();
      await check(again);
      await again.close();
    }
  });
});

describe("sender keys in a RelayStore", () => {
  it("a group chain stored in SQLite survives reopening on both sides", async () => {
    const { RelaySenderKeyStore } = await import("../../../client/store/sender-key-store");
    const { createSenderKeyDistributionMessage, groupDecrypt, groupEncrypt, newDistributionId, processSenderKeyDistributionMessage } = await import("../../../client/crypto/sender-keys");
    const path = join(dir, "sender-keys.db");
    const alice = { userId: crypto.randomUUID(), deviceId: 1 };
    const distributionId = newDistributionId();
    let aliceStore = new SqliteStore(path);
    const bobStore = new MemoryStore();
    const distribution = await createSenderKeyDistributionMessage(alice, distributionId, new RelaySenderKeyStore(aliceStore));
    await processSenderKeyDistributionMessage(alice, distribution, new RelaySenderKeyStore(bobStore));
    await aliceStore.close();
    aliceStore = new SqliteStore(path);
    const sealed = await groupEncrypt(alice, distributionId, new RelaySenderKeyStore(aliceStore), new TextEncoder().encode("to the group"));
    const opened = await groupDecrypt(alice, new RelaySenderKeyStore(bobStore), sealed);
    expect(new TextDecoder().decode(opened)).toBe("to the group");
    await aliceStore.close();
  });
});
