/** Malformed or over-limit group input: a typed error, and nothing stored. */
import { describe, expect, it } from "vitest";
import { LIMITS } from "../../../src/protocol/limits";
import { api, body, connect, registerUser } from "../support/relay";
import { createGroup, fannedOut, groupRows } from "./support";

const uuid = () => crypto.randomUUID();

describe("bad group input", () => {
  it("refuses bad create and membership bodies with 400/404/409 and the group unchanged", async () => {
    const admin = await registerUser();
    const bob = await registerUser();
    const token = admin.session.accessToken;
    const cases: [unknown, number, string][] = [
      [{ members: [bob.session.userId, bob.session.userId] }, 400, "bad_request"],
      [{ members: Array.from({ length: LIMITS.maxGroupMembers }, uuid) }, 400, "bad_request"],
      [{ members: ["not-a-uuid"] }, 400, "bad_request"],
      [{ members: [uuid()] }, 404, "not_found"],
      [{ kind: "party" }, 400, "bad_request"],
      [{ info: "not base64!" }, 400, "bad_request"],
      [{ info: btoa("x".repeat(LIMITS.maxGroupInfoBytes + 1)) }, 400, "bad_request"],
      ["{not json", 400, "bad_request"],
    ];
    for (const [payload, status, code] of cases) {
      const res = await api("POST", "/v1/groups", { token, body: payload });
      expect(res.status, JSON.stringify(payload).slice(0, 80)).toBe(status);
      expect(res.json).toMatchObject({ error: { code } });
    }
    expect((await api("GET", "/v1/groups", { token })).json).toEqual({ groups: [] });

    const group = await createGroup(admin, [bob]);
    const g = group.groupId;
    await fannedOut(g);
    const before = await groupRows(g);
    const refusals: [string, string, unknown, number, string][] = [
      ["POST", `/v1/groups/${g}/members`, { members: [bob.session.userId] }, 409, "conflict"],
      ["POST", `/v1/groups/${g}/members`, { members: [] }, 400, "bad_request"],
      ["POST", `/v1/groups/${g}/members`, { members: [uuid()] }, 404, "not_found"],
      ["POST", `/v1/groups/${g}/members`, { members: Array.from({ length: LIMITS.maxGroupMembers + 1 }, uuid) }, 400, "bad_request"],
      ["DELETE", `/v1/groups/${g}/members/${uuid()}`, undefined, 404, "not_found"],
      ["PUT", `/v1/groups/${g}/members/${bob.session.userId}/role`, { role: "owner" }, 400, "bad_request"],
      ["PUT", `/v1/groups/${g}/members/${admin.session.userId}/role`, { role: "member" }, 409, "conflict"],
      ["PUT", `/v1/groups/${g}/info`, { info: 42 }, 400, "bad_request"],
      ["DELETE", `/v1/groups/${g}/invites/not-a-token`, undefined, 400, "bad_request"],
      ["DELETE", `/v1/groups/${g}/invites/${g}.${"A".repeat(43)}`, undefined, 404, "not_found"],
      ["POST", `/v1/groups/${g}/requests/${bob.session.userId}`, { approve: true }, 404, "not_found"],
      ["GET", `/v1/groups/${g}/messages?after=-1`, undefined, 400, "bad_request"],
      ["GET", `/v1/groups/${g}/messages?limit=100000`, undefined, 400, "bad_request"],
      ["GET", `/v1/groups/${g}/messages/999/receipts`, undefined, 404, "not_found"],
      ["GET", `/v1/groups/${uuid()}`, undefined, 404, "not_found"],
      ["POST", `/v1/groups/${uuid()}/invites`, {}, 404, "not_found"],
      ["GET", `/v1/groups/not-a-group`, undefined, 404, "not_found"],
    ];
    for (const [method, path, payload, status, code] of refusals) {
      const res = await api(method, path, { token, ...(payload !== undefined && { body: payload }) });
      expect(res.status, `${method} ${path}: ${JSON.stringify(res.json)}`).toBe(status);
      expect(res.json).toMatchObject({ error: { code } });
    }
    expect(await groupRows(g)).toEqual(before);
  });

  it("refuses malformed, revoked and unknown invite tokens", async () => {
    const admin = await registerUser();
    const joiner = await registerUser();
    const group = await createGroup(admin, []);
    const invite = (await api("POST", `/v1/groups/${group.groupId}/invites`, { token: admin.session.accessToken, body: {} })).json as { token: string };
    expect((await api("DELETE", `/v1/groups/${group.groupId}/invites/${invite.token}`, { token: admin.session.accessToken })).status).toBe(204);
    await fannedOut(group.groupId);
    const before = await groupRows(group.groupId);
    const tokens: [unknown, number][] = [
      [invite.token, 404], // revoked
      [`${group.groupId}.${"B".repeat(43)}`, 404], // never issued
      [`${uuid()}.${"B".repeat(43)}`, 404], // no such group
      ["garbage", 400],
      [`${group.groupId}.short`, 400],
      [42, 400],
    ];
    for (const [token, status] of tokens) {
      const res = await api("POST", "/v1/groups/join", { token: joiner.session.accessToken, body: { token } });
      expect(res.status, String(token)).toBe(status);
      expect(res.json).toMatchObject({ error: { code: status === 400 ? "bad_request" : "not_found" } });
    }
    expect(await groupRows(group.groupId)).toEqual(before);
  });

  it("refuses bad group frames with an error frame and stores nothing", async () => {
    const admin = await registerUser();
    const bob = await registerUser();
    const group = await createGroup(admin, [bob]);
    await fannedOut(group.groupId);
    const before = await groupRows(group.groupId);
    const { socket } = await connect(admin);
    const oversize = btoa("x".repeat(LIMITS.maxEnvelopeBytes + 3));
    const frames: [Record<string, unknown>, string][] = [
      [{ type: "group_send", id: "b1", group: group.groupId, epoch: 1, body: oversize }, "bad_request"],
      [{ type: "group_send", id: "b2", group: group.groupId, epoch: 1, body: "not base64!" }, "bad_request"],
      [{ type: "group_send", id: "b3", group: "not-a-uuid", epoch: 1, body: body("x") }, "bad_request"],
      [{ type: "group_send", id: "b4", group: uuid(), epoch: 1, body: body("x") }, "not_found"],
      [{ type: "group_send", id: "b5", group: group.groupId, epoch: 0, body: body("x") }, "bad_request"],
      [{ type: "group_send", id: "b6", group: group.groupId, epoch: 9, body: body("x") }, "stale_epoch"],
      [{ type: "group_read", id: "b7", group: group.groupId, seqs: [] }, "bad_request"],
      [{ type: "group_read", id: "b8", group: group.groupId, seqs: Array.from({ length: LIMITS.maxReceiptRefs + 1 }, (_, i) => i + 1) }, "bad_request"],
    ];
    for (const [frame, code] of frames) {
      const answer = await socket.request(frame as never);
      expect(answer, JSON.stringify(frame).slice(0, 80)).toMatchObject({ type: "error", id: frame.id, code });
    }
    expect(await groupRows(group.groupId)).toEqual(before);
  });
});
