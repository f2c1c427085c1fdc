/**
 * Groups end to end with the SDK against the real server (`npm start`): three users, two of them with two devices.
 * Every member device decrypts every group message (sender keys in libsignal's format, distributed over the pairwise
 * sessions before the message); removing a member rotates the senders' keys so that the removed member's devices
 * cannot decrypt anything sent later while everyone else's can; the server stores ciphertext only; joining by an
 * invite link with approval; aggregated receipts; a restarted client keeps its group state and keys.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Relay, SqliteStore, type GroupHistoryRecord } from "../../../client/node";
import { SenderKeyError, groupDecrypt, parseSenderKeyMessage, senderKeyName } from "../../../client/crypto/sender-keys";
import { RelaySenderKeyStore } from "../../../client/store/sender-key-store";
import { fromBase64 } from "../../../src/protocol/base64";
import type { GroupLogPage } from "../../../src/protocol/groups";
import { groupDecrypt as libsignalGroupDecrypt } from "@signalapp/libsignal-client";
import { LibsignalSenderKeyStore, protocolAddress } from "../client/libsignal-sender-key-store";
import { api } from "../support/relay-client";
import { startRelay, type RelayServer } from "../support/server";
import { eventually } from "../support/eventually";
import { FAST, accessToken, filesUnder, groupSends, linkSdk, observe, reconnectSdk, recordingWebSocket, registerSdk, type SdkDevice } from "../support/sdk-devices";

describe("groups with the SDK: sender keys, rotation on removal, invites, receipts", () => {
  let server: RelayServer;
  let persistTo: string;
  let storeDir: string;
  let alice1: SdkDevice, alice2: SdkDevice, bob1: SdkDevice, bob2: SdkDevice, carol: SdkDevice;
  let carolDb: string;
  let groupId: string;
  const secret = `plain-${crypto.randomUUID()}`;
  const all = () => [alice1, alice2, bob1, bob2, carol];

  beforeAll(async () => {
    persistTo = await mkdtemp(join(tmpdir(), "relay-groups-"));
    storeDir = await mkdtemp(join(tmpdir(), "relay-groups-stores-"));
    carolDb = join(storeDir, "carol.db");
    server = await startRelay({ persistTo });
    alice1 = await registerSdk(server, "+14155550121");
    bob1 = await registerSdk(server, "+14155550122");
    carol = await registerSdk(server, "+14155550123", { store: new SqliteStore(carolDb) });
    [alice2, bob2] = await Promise.all([linkSdk(server, alice1), linkSdk(server, bob1)]);
    await Promise.all(all().map((d) => d.relay.opened()));
  });

  afterAll(async () => {
    await Promise.all(all().map((d) => d?.relay.close()));
    await carol?.store.close();
    await server?.stop();
    await rm(persistTo, { recursive: true, force: true });
    await rm(storeDir, { recursive: true, force: true });
  });

  /** Waits until `device` has the group message `id` and returns it. */
  const received = (device: SdkDevice, id: string) => eventually(() => device.groupMessages.find((m) => m.id === id && m.group === groupId));
  const sentSeq = async (device: SdkDevice, id: string) => (await eventually(() => device.groupStatuses.find((s) => s.id === id && s.status === "sent"))).groupSeq!;

  it("every member device decrypts every group message; the sender key went out over 1:1 sessions first", async () => {
    const group = await alice1.relay.createGroup({ members: [bob1.relay.userId, carol.relay.userId] });
    groupId = group.groupId;
    expect(group.members.map((m) => m.userId).sort()).toEqual([alice1.relay.userId, bob1.relay.userId, carol.relay.userId].sort());
    expect(group.you).toMatchObject({ userId: alice1.relay.userId, role: "admin" });
    expect(group).toMatchObject({ kind: "group", fanout: "write" });

    const first = await alice1.relay.sendToGroup(groupId, `${secret} hello`);
    const seq = await sentSeq(alice1, first);
    for (const device of [alice2, bob1, bob2, carol]) {
      const m = await received(device, first);
      expect(m).toMatchObject({ from: alice1.relay.userId, fromDevice: 1, groupSeq: seq, text: `${secret} hello` });
      expect(m.direction).toBe(device.relay.userId === alice1.relay.userId ? "outgoing" : "incoming");
    }
    // The distribution messages were pairwise sends, acknowledged before the group send went out.
    const groupSendAt = alice1.frames.findIndex((f) => f.type === "group_send" && f.id === first);
    const pairwiseTo = alice1.frames.slice(0, groupSendAt).filter((f) => f.type === "send").map((f) => (f as { to: string }).to);
    expect(pairwiseTo).toEqual(expect.arrayContaining([bob1.relay.userId, carol.relay.userId]));
    for (const d of all()) {
      expect(d.groupEvents.some((e) => e.group === groupId && e.event.type === "created")).toBe(true);
      expect((await d.relay.messages(alice1.relay.userId)).length).toBe(0); // sender keys never show as 1:1 messages
    }

    const reply = await bob2.relay.sendToGroup(groupId, `${secret} reply`);
    for (const device of [alice1, alice2, bob1, carol]) expect((await received(device, reply)).text).toBe(`${secret} reply`);
    // A second message needs no new distribution.
    const pairwiseBefore = alice1.frames.filter((f) => f.type === "send").length;
    const again = await alice1.relay.sendToGroup(groupId, `${secret} again`);
    await received(carol, again);
    expect(alice1.frames.filter((f) => f.type === "send").length).toBe(pairwiseBefore);
    for (const d of all()) expect(d.errors).toEqual([]);
  });

  it("what the SDK sends is libsignal's format: libsignal decrypts it with the sender key a member's device stored", async () => {
    const alice = { userId: alice1.relay.userId, deviceId: 1 };
    const last = [...groupSends(alice1).values()].at(-1)!;
    const distribution = parseSenderKeyMessage(fromBase64(last.body)).distributionId;
    const record = await bob1.store.get("senderKeys", senderKeyName(alice, distribution));
    expect(record).toBeInstanceOf(Uint8Array);
    const libsignal = new LibsignalSenderKeyStore();
    libsignal.putRecordBytes(alice, distribution, record!);
    const id = await alice1.relay.sendToGroup(groupId, `${secret} for libsignal`);
    const body = fromBase64((await eventually(() => groupSends(alice1).get(id))).body);
    const plaintext = await libsignalGroupDecrypt(protocolAddress(alice), libsignal, Uint8Array.from(body));
    expect(new TextDecoder().decode(plaintext)).toContain(`${secret} for libsignal`);
    await received(bob1, id);
  });

  it("removing a member rotates the sender keys: the removed member's devices cannot decrypt what is sent after", async () => {
    const distributionOf = (device: SdkDevice, id: string) => parseSenderKeyMessage(fromBase64(groupSends(device).get(id)!.body)).distributionId;
    const lastSent = (device: SdkDevice) => device.groupStatuses.findLast((s) => s.group === groupId && s.status === "sent")!.id;
    const aliceBefore = distributionOf(alice1, lastSent(alice1));
    const bobBefore = distributionOf(bob2, lastSent(bob2)); // bob2's key went to carol with its reply

    await alice1.relay.removeMember(groupId, carol.relay.userId);
    await eventually(() => carol.groupEvents.find((e) => e.group === groupId && e.event.type === "removed"));
    // bob2 learns of the removal from the group event (or, failing that, from the stale-epoch refusal).
    const fromAlice = await alice1.relay.sendToGroup(groupId, `${secret} after removal (alice)`);
    const fromBob = await bob2.relay.sendToGroup(groupId, `${secret} after removal (bob)`);
    for (const device of [alice2, bob1, bob2]) expect((await received(device, fromAlice)).text).toBe(`${secret} after removal (alice)`);
    for (const device of [alice1, alice2, bob1]) expect((await received(device, fromBob)).text).toBe(`${secret} after removal (bob)`);

    expect(distributionOf(alice1, fromAlice)).not.toBe(aliceBefore);
    expect(distributionOf(bob2, fromBob)).not.toBe(bobBefore);
    // The removed member holds the old sender keys but none of the new ones: neither ciphertext decrypts there.
    const carolKeys = new RelaySenderKeyStore(carol.store);
    expect(await carolKeys.loadSenderKey({ userId: alice1.relay.userId, deviceId: 1 }, aliceBefore)).not.toBeNull();
    expect(await carolKeys.loadSenderKey({ userId: bob2.relay.userId, deviceId: 2 }, bobBefore)).not.toBeNull();
    for (const [sender, id] of [[alice1, fromAlice], [bob2, fromBob]] as const) {
      const attempt = groupDecrypt({ userId: sender.relay.userId, deviceId: sender.relay.deviceId }, carolKeys, fromBase64(groupSends(sender).get(id)!.body));
      await expect(attempt).rejects.toBeInstanceOf(SenderKeyError);
      await expect(attempt).rejects.toMatchObject({ code: "no-sender-key-state" });
    }
    // And the server delivered neither to carol.
    expect(carol.groupMessages.some((m) => m.id === fromAlice || m.id === fromBob)).toBe(false);
    const state = await alice1.relay.group(groupId);
    expect(state.members.map((m) => m.userId)).not.toContain(carol.relay.userId);
  });

  it("the server's stored group entries hold ciphertext only", async () => {
    const page = await api<GroupLogPage>(server.url, "GET", `/v1/groups/${groupId}/messages?after=0`, { token: await accessToken(bob1) });
    expect(page.status).toBe(200);
    const text = JSON.stringify(page.json);
    const bodies = page.json.entries.flatMap((e) => (e.kind === "group_message" ? [e.body] : []));
    expect(bodies.length).toBeGreaterThan(0);
    for (const body of groupSends(alice1).values()) if (page.json.entries.some((e) => e.kind === "group_message" && e.id === body.id)) expect(text).toContain(body.body);
    expect(text).not.toContain(secret);
    expect(text).not.toContain(Buffer.from(`${secret} hello`).toString("base64").slice(0, 40));

    const files = await filesUnder(persistTo);
    expect(files.some((c) => c.includes(Buffer.from(secret)))).toBe(false);
    expect(files.some((c) => c.includes(Buffer.from(bodies[0]!)))).toBe(true); // control: the ciphertext is there
  });

  it("joining by an invite link that needs approval: the new member reads what is sent after, not before", async () => {
    const invite = await alice1.relay.createInvite(groupId, { approval: true });
    expect(invite.approval).toBe(true);
    expect(await carol.relay.joinByInvite(`relay://join/${invite.token}`)).toEqual({ joined: false, pending: true });
    expect((await alice1.relay.joinRequests(groupId)).map((r) => r.userId)).toEqual([carol.relay.userId]);
    await alice1.relay.decideJoinRequest(groupId, carol.relay.userId, true);
    await eventually(() => carol.groupEvents.find((e) => e.group === groupId && e.event.type === "joined"));

    const welcome = await alice1.relay.sendToGroup(groupId, `${secret} welcome back`);
    const fromBob = await bob2.relay.sendToGroup(groupId, `${secret} hi carol`);
    expect((await received(carol, welcome)).text).toBe(`${secret} welcome back`);
    expect((await received(carol, fromBob)).text).toBe(`${secret} hi carol`);
    for (const device of [alice2, bob1, bob2]) await received(device, welcome);

    // A revoked link lets nobody in.
    const open = await alice1.relay.createInvite(groupId);
    await alice1.relay.revokeInvite(groupId, open.token);
    await expect(bob1.relay.joinByInvite(open.token)).rejects.toMatchObject({ status: 404 });
    expect(carol.errors).toEqual([]);
  });

  it("receipts: the sender sees aggregated counts live and can fetch the per-member list", async () => {
    const id = await alice1.relay.sendToGroup(groupId, `${secret} read me`);
    const seq = await sentSeq(alice1, id);
    await received(bob1, id);
    await received(carol, id);
    await bob1.relay.markGroupRead(groupId, [seq]);
    await carol.relay.markGroupRead(groupId, [seq]);
    const live = await eventually(() => alice1.groupReceipts.flatMap((r) => r.counts).find((c) => c.groupSeq === seq && c.read === 2));
    expect(live).toMatchObject({ id, members: 2, delivered: 2, read: 2 });
    const list = await alice1.relay.groupReceipts(groupId, seq);
    expect(list.receipts.filter((r) => r.readAt !== null).map((r) => r.userId).sort()).toEqual([bob1.relay.userId, carol.relay.userId].sort());
    expect(alice2.groupReceipts.some((r) => r.counts.some((c) => c.groupSeq === seq))).toBe(true); // the sender's other device too
    expect(bob1.groupReceipts.some((r) => r.counts.some((c) => c.groupSeq === seq))).toBe(false); // nobody else gets them
  });

  it("a restarted client keeps its group state, history and sender keys", async () => {
    const history = (await carol.relay.groupHistory(groupId)).map((e: GroupHistoryRecord) => e.groupSeq);
    await carol.relay.close();
    await carol.store.close();
    const reopened = await reconnectSdk(new SqliteStore(carolDb));
    carol = reopened;
    expect((await carol.relay.groupHistory(groupId)).map((e) => e.groupSeq)).toEqual(history);
    expect(await carol.store.get("groups", groupId)).toMatchObject({ groupId, kind: "group" });

    const id = await bob2.relay.sendToGroup(groupId, `${secret} after restart`);
    expect((await received(carol, id)).text).toBe(`${secret} after restart`);
    const mine = await carol.relay.sendToGroup(groupId, `${secret} carol is back`);
    for (const device of [alice1, alice2, bob1, bob2]) await received(device, mine);
    expect(carol.errors).toEqual([]);
  });

  it("a stale epoch (the removal not seen yet) is refused; the SDK rotates and retries with the same client id", async () => {
    // bob2 is offline while alice removes carol. When it comes back, its inbox (with the removal) is held until its
    // first group send is on the wire: that send names the old epoch, under the old key, and must be refused.
    await bob2.relay.close();
    await alice1.relay.removeMember(groupId, carol.relay.userId);
    const frames = bob2.frames;
    let open = false;
    const held: (() => void)[] = [];
    class HoldInbox extends recordingWebSocket(frames) {
      override set onmessage(handler: ((this: WebSocket, ev: MessageEvent) => unknown) | null) {
        super.onmessage = handler && ((ev: MessageEvent) => (open || !String(ev.data).includes('"type":"deliver"') ? handler.call(this, ev) : held.push(() => handler.call(this, ev))));
      }
      override get onmessage() {
        return super.onmessage;
      }
      override send(data: Parameters<WebSocket["send"]>[0]): void {
        super.send(data);
        if (!open && String(data).includes('"type":"group_send"')) {
          open = true;
          setTimeout(() => held.splice(0).forEach((deliver) => deliver()), 0);
        }
      }
    }
    bob2 = observe(await Relay.connect({ store: bob2.store, tuning: FAST, WebSocket: HoldInbox }), bob2.store, frames);
    const previous = parseSenderKeyMessage(fromBase64([...groupSends(bob2).values()].at(-1)!.body)).distributionId;
    const id = await bob2.relay.sendToGroup(groupId, `${secret} bob2 after carol left`);
    for (const device of [alice1, alice2, bob1]) expect((await received(device, id)).text).toBe(`${secret} bob2 after carol left`);

    const attempts = frames.filter((f): f is Extract<typeof f, { type: "group_send" }> => f.type === "group_send" && f.id === id);
    expect(attempts).toHaveLength(2);
    const [stale, retry] = attempts.map((f) => ({ epoch: f.epoch, distribution: parseSenderKeyMessage(fromBase64(f.body)).distributionId }));
    expect(stale!.distribution).toBe(previous); // the first try: old epoch, old key
    expect(retry!.epoch).toBeGreaterThan(stale!.epoch);
    expect(retry!.distribution).not.toBe(previous); // rotated because carol, who had the key, is gone
    await expect(groupDecrypt({ userId: bob2.relay.userId, deviceId: 2 }, new RelaySenderKeyStore(carol.store), fromBase64(attempts[1]!.body))).rejects.toMatchObject({
      code: "no-sender-key-state",
    });
    expect(bob2.errors).toEqual([]);
  });
});
