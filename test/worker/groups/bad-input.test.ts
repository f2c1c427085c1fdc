/** Malformed or over-limit group input: a typed error, and nothing stored. */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { LIMITS } from "../../../src/protocol/limits";
import { api, body, connect, registerUser } from "../support/relay";
import { createGroup, fannedOut, groupRows } from "./support";

let fixturePhones = 0;

/** Accounts as D1 rows only (members who never connect; registering each through SMS would only slow the test). */
async function fixtureAccounts(n: number): Promise<string[]> {
  const ids = Array.from({ length: n }, () => crypto.randomUUID());
  const phone = () => `+1777${String(fixturePhones++).padStart(7, "0")}`; // unique: random digits collided 1 run in ~50
  await env.DB.batch(ids.map((id) => env.DB.prepare("INSERT INTO accounts (user_id, phone, created_at) VALUES (?, ?, 0)").bind(id, phone())));
  return ids;
}

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
      ["GET", `/v1/groups/${g}/messages?limit=0`, undefined, 400, "bad_request"],
      ["GET", `/v1/groups/${g}/messages?after=abc`, undefined, 400, "bad_request"],
      ["GET", `/v1/groups/${g}/messages?after=1.5`, undefined, 400, "bad_request"],
      ["POST", `/v1/groups/${g}/members`, { members: [uuid(), uuid()].flatMap((u) => [u, u]) }, 400, "bad_request"],
      ["POST", `/v1/groups/${g}/members`, { members: "everyone" }, 400, "bad_request"],
      ["PUT", `/v1/groups/${g}/info`, { info: btoa("x".repeat(LIMITS.maxGroupInfoBytes + 1)) }, 400, "bad_request"],
      ["POST", `/v1/groups/${g}/invites`, { approval: "yes" }, 400, "bad_request"],
      ["POST", `/v1/groups/${g}/requests/${bob.session.userId}`, { approve: "yes" }, 400, "bad_request"],
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

  it("an unknown group id is 404 on every route and frame, and leaves its object empty", async () => {
    const admin = await registerUser();
    const g = uuid();
    const token = admin.session.accessToken;
    for (const [method, path, payload] of [
      ["GET", `/v1/groups/${g}`],
      ["PUT", `/v1/groups/${g}/info`, { info: btoa("x") }],
      ["POST", `/v1/groups/${g}/members`, { members: [admin.session.userId] }],
      ["DELETE", `/v1/groups/${g}/members/${admin.session.userId}`],
      ["PUT", `/v1/groups/${g}/members/${admin.session.userId}/role`, { role: "admin" }],
      ["POST", `/v1/groups/${g}/invites`, {}],
      ["DELETE", `/v1/groups/${g}/invites/${g}.${"A".repeat(43)}`],
      ["GET", `/v1/groups/${g}/requests`],
      ["POST", `/v1/groups/${g}/requests/${admin.session.userId}`, { approve: true }],
      ["GET", `/v1/groups/${g}/messages`],
      ["GET", `/v1/groups/${g}/messages/1/receipts`],
      ["POST", "/v1/groups/join", { token: `${g}.${"A".repeat(43)}` }],
    ] as [string, string, unknown?][]) {
      const res = await api(method, path, { token, ...(payload !== undefined && { body: payload }) });
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(res.json).toMatchObject({ error: { code: "not_found", message: expect.any(String) } });
    }
    const { socket } = await connect(admin);
    expect(await socket.request({ type: "group_send", id: "u1", group: g, epoch: 1, body: body("x") })).toMatchObject({ type: "error", code: "not_found" });
    expect(await socket.request({ type: "group_read", id: "u2", group: g, seqs: [1] })).toMatchObject({ type: "error", code: "not_found" });
    const rows = await groupRows(g);
    expect(Object.values(rows).every((table) => table.length === 0)).toBe(true);
    expect((await api("GET", "/v1/groups", { token })).json).toEqual({ groups: [] });
  });

  it(`a group holds at most ${LIMITS.maxGroupMembers} members: adds, joins and approvals past it are refused and change nothing`, { timeout: 60_000 }, async () => {
    const admin = await registerUser();
    const asking = await registerUser();
    const late = await registerUser();
    const members = await fixtureAccounts(LIMITS.maxGroupMembers - 2);
    const group = await createGroup(admin, [], {});
    const g = group.groupId;
    // Too many at once: refused before anything is stored.
    const tooMany = await fixtureAccounts(LIMITS.maxGroupMembers);
    const refusedAdd = await api("POST", `/v1/groups/${g}/members`, { token: admin.session.accessToken, body: { members: tooMany } });
    expect(refusedAdd).toMatchObject({ status: 409, json: { error: { code: "too_many_members" } } });
    expect((await api("POST", `/v1/groups/${g}/members`, { token: admin.session.accessToken, body: { members } })).status).toBe(200);
    const gated = ((await api("POST", `/v1/groups/${g}/invites`, { token: admin.session.accessToken, body: { approval: true } })).json as { token: string }).token;
    const open = ((await api("POST", `/v1/groups/${g}/invites`, { token: admin.session.accessToken, body: {} })).json as { token: string }).token;
    expect((await api("POST", "/v1/groups/join", { token: asking.session.accessToken, body: { token: gated } })).status).toBe(202);
    expect((await api("POST", "/v1/groups/join", { token: late.session.accessToken, body: { token: open } })).status).toBe(200); // the last seat
    await fannedOut(g);
    const before = await groupRows(g);
    expect(before.members).toHaveLength(LIMITS.maxGroupMembers);
    const extra = await fixtureAccounts(1);
    expect(await api("POST", `/v1/groups/${g}/members`, { token: admin.session.accessToken, body: { members: extra } })).toMatchObject({ status: 409, json: { error: { code: "too_many_members" } } });
    expect(await api("POST", "/v1/groups/join", { token: (await registerUser()).session.accessToken, body: { token: open } })).toMatchObject({ status: 409, json: { error: { code: "too_many_members" } } });
    // Approving into a full group is refused, and the request stays for a later decision.
    expect(await api("POST", `/v1/groups/${g}/requests/${asking.session.userId}`, { token: admin.session.accessToken, body: { approve: true } })).toMatchObject({
      status: 409,
      json: { error: { code: "too_many_members" } },
    });
    expect(await groupRows(g)).toEqual(before);
    expect(((await api("GET", `/v1/groups/${g}/requests`, { token: admin.session.accessToken })).json as { requests: { userId: string }[] }).requests.map((r) => r.userId)).toEqual([asking.session.userId]);
  });
});
