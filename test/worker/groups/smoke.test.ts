import { describe, expect, it } from "vitest";
import type { GroupInboxEnvelope } from "../../../src/protocol/frames";
import type { GroupState } from "../../../src/protocol/groups";
import { api, body, connect, linkDevice, registerUser } from "../support/relay";

describe("group smoke", () => {
  it("creates, sends, fans out, and receipts", async () => {
    const alice = await registerUser();
    const bob = await registerUser();
    const bob2 = await linkDevice(bob);
    const created = await api("POST", "/v1/groups", { token: alice.session.accessToken, body: { members: [bob.session.userId] } });
    expect(created.status).toBe(201);
    const state = created.json as GroupState;
    expect(state).toMatchObject({ epoch: 1, seq: 1, fanout: "write", memberCount: 2 });
    const { socket: a } = await connect(alice);
    const { socket: b } = await connect(bob);
    const { socket: b2 } = await connect(bob2);
    const [created1] = (await b.receive(1)) as GroupInboxEnvelope[];
    expect(created1).toMatchObject({ kind: "group_event", groupSeq: 1, event: { type: "created" } });
    const sent = await a.request({ type: "group_send", id: "g1", group: state.groupId, epoch: 1, body: body("ciphertext") });
    expect(sent).toMatchObject({ type: "sent", id: "g1", groupSeq: 2 });
    const got = (await b.receive(1)) as GroupInboxEnvelope[];
    expect(got[0]).toMatchObject({ kind: "group_message", groupSeq: 2, from: alice.session.userId, body: body("ciphertext") });
    await b2.receive(2);
    const receipts = await a.next("group_receipts");
    expect(receipts.counts[0]).toMatchObject({ groupSeq: 2, delivered: 1, members: 1 });
    const stale = await a.request({ type: "group_send", id: "g2", group: state.groupId, epoch: 7, body: body("x") });
    expect(stale).toMatchObject({ type: "error", code: "stale_epoch", group: { epoch: 1 } });
    const list = await api("GET", "/v1/groups", { token: bob.session.accessToken });
    expect(list.json).toMatchObject({ groups: [{ groupId: state.groupId, fanout: "write" }] });
  });
});
