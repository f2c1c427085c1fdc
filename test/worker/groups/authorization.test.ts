/** Who may do what to a group: every route and frame, asked by every kind of outsider, refused with nothing changed. */
import { describe, expect, it } from "vitest";
import { fromBase64, toBase64 } from "../../../src/protocol/base64";
import { channelPostSignedBytes } from "../../../src/protocol/groups";
import { xeddsaSign } from "../../../src/protocol/keys";
import { api, body, connect, registerUser, type TestDevice } from "../support/relay";
import { createGroup, fannedOut, groupRows, inboxRows } from "./support";

describe("group authorization", async () => {
  it("refuses non-members, removed members, non-admins and missing tokens on every route, changing nothing", async () => {
    const admin = await registerUser();
    const member = await registerUser();
    const removed = await registerUser();
    const outsider = await registerUser();
    const newcomer = await registerUser();
    const group = await createGroup(admin, [member, removed]);
    const g = group.groupId;
    expect((await api("DELETE", `/v1/groups/${g}/members/${removed.session.userId}`, { token: admin.session.accessToken })).status).toBe(204);
    const invite = await api("POST", `/v1/groups/${g}/invites`, { token: admin.session.accessToken, body: { approval: true } });
    expect(invite.status).toBe(201);
    const token = (invite.json as { token: string }).token;
    expect((await api("POST", "/v1/groups/join", { token: newcomer.session.accessToken, body: { token } })).status).toBe(202);
    const { socket: a } = await connect(admin);
    expect(await a.request({ type: "group_send", id: "m", group: g, epoch: 2, body: body("x") })).toMatchObject({ groupSeq: 3 });
    await fannedOut(g);
    const before = await groupRows(g);

    const routes: [string, string, unknown?][] = [
      ["GET", `/v1/groups/${g}`],
      ["PUT", `/v1/groups/${g}/info`, { info: btoa("new title") }],
      ["POST", `/v1/groups/${g}/members`, { members: [outsider.session.userId] }],
      ["DELETE", `/v1/groups/${g}/members/${admin.session.userId}`],
      ["PUT", `/v1/groups/${g}/members/${member.session.userId}/role`, { role: "admin" }],
      ["POST", `/v1/groups/${g}/invites`, { approval: false }],
      ["DELETE", `/v1/groups/${g}/invites/${encodeURIComponent(token)}`],
      ["GET", `/v1/groups/${g}/requests`],
      ["POST", `/v1/groups/${g}/requests/${newcomer.session.userId}`, { approve: true }],
      ["GET", `/v1/groups/${g}/messages?after=0`],
      ["GET", `/v1/groups/${g}/messages/3/receipts`],
    ];
    const memberMay = new Set([`GET /v1/groups/${g}`, `GET /v1/groups/${g}/messages?after=0`]);
    const askers: [string, TestDevice | undefined, (route: string) => number][] = [
      ["no token", undefined, () => 401],
      ["outsider", outsider, () => 404],
      ["removed member", removed, () => 404],
      ["pending joiner", newcomer, () => 404],
      // A plain member reads, but administers nothing, and only the sender sees a message's receipts.
      ["member", member, (route) => (memberMay.has(route) ? 200 : 403)],
    ];
    for (const [who, device, expected] of askers) {
      for (const [method, path, payload] of routes) {
        const res = await api(method, path, { ...(device && { token: device.session.accessToken }), ...(payload !== undefined && { body: payload }) });
        const want = expected(`${method} ${path}`);
        expect(res.status, `${who}: ${method} ${path} → ${JSON.stringify(res.json)}`).toBe(want);
        if (want >= 400) expect(res.json).toMatchObject({ error: { code: expect.any(String), message: expect.any(String) } });
      }
    }
    expect(await groupRows(g)).toEqual(before);
  });

  it("refuses group frames from non-members and removed members with an error frame, storing nothing", async () => {
    const admin = await registerUser();
    const removed = await registerUser();
    const outsider = await registerUser();
    const group = await createGroup(admin, [removed]);
    expect((await api("DELETE", `/v1/groups/${group.groupId}/members/${removed.session.userId}`, { token: admin.session.accessToken })).status).toBe(204);
    await fannedOut(group.groupId);
    const before = await groupRows(group.groupId);
    for (const device of [removed, outsider]) {
      const { socket } = await connect(device);
      for (const epoch of [1, 2]) {
        expect(await socket.request({ type: "group_send", id: `x${epoch}`, group: group.groupId, epoch, body: body("let me in") })).toMatchObject({
          type: "error",
          code: "not_found",
        });
      }
      expect(await socket.request({ type: "group_read", id: "r", group: group.groupId, seqs: [1] })).toMatchObject({ type: "error", id: "r", code: "not_found" });
      socket.close();
    }
    expect(await groupRows(group.groupId)).toEqual(before);
  });

  it("another user's token acts as that user only: it cannot remove or promote on someone else's behalf", async () => {
    const admin = await registerUser();
    const bob = await registerUser();
    const carol = await registerUser();
    const group = await createGroup(admin, [bob, carol]);
    await fannedOut(group.groupId);
    const before = await groupRows(group.groupId);
    // Bob (a member) tries to remove Carol and to promote himself: his token speaks for him, not for the admin.
    expect((await api("DELETE", `/v1/groups/${group.groupId}/members/${carol.session.userId}`, { token: bob.session.accessToken })).status).toBe(403);
    expect((await api("PUT", `/v1/groups/${group.groupId}/members/${bob.session.userId}/role`, { token: bob.session.accessToken, body: { role: "admin" } })).status).toBe(403);
    expect(await groupRows(group.groupId)).toEqual(before);
  });

  it("in a channel, subscribers read but administer and post nothing; outsiders learn nothing", async () => {
    const admin = await registerUser();
    const subscriber = await registerUser();
    const outsider = await registerUser();
    const channel = await createGroup(admin, [], { kind: "channel" });
    const c = channel.groupId;
    const invite = await api("POST", `/v1/groups/${c}/invites`, { token: admin.session.accessToken, body: {} });
    const token = (invite.json as { token: string }).token;
    expect((await api("POST", "/v1/groups/join", { token: subscriber.session.accessToken, body: { token } })).status).toBe(200);
    await fannedOut(c);
    const before = await groupRows(c);
    const routes: [string, string, unknown?][] = [
      ["GET", `/v1/groups/${c}`],
      ["GET", `/v1/groups/${c}/messages?after=0`],
      ["PUT", `/v1/groups/${c}/info`, { info: btoa("new title") }],
      ["POST", `/v1/groups/${c}/members`, { members: [outsider.session.userId] }],
      ["DELETE", `/v1/groups/${c}/members/${admin.session.userId}`],
      ["PUT", `/v1/groups/${c}/members/${subscriber.session.userId}/role`, { role: "admin" }],
      ["POST", `/v1/groups/${c}/invites`, { approval: false }],
      ["DELETE", `/v1/groups/${c}/invites/${token}`],
      ["GET", `/v1/groups/${c}/requests`],
      ["POST", `/v1/groups/${c}/requests/${outsider.session.userId}`, { approve: true }],
      ["GET", `/v1/groups/${c}/messages/1/receipts`],
    ];
    for (const [method, path, payload] of routes) {
      const reads = method === "GET" && !path.includes("requests") && !path.includes("receipts");
      const sub = await api(method, path, { token: subscriber.session.accessToken, ...(payload !== undefined && { body: payload }) });
      expect(sub.status, `subscriber: ${method} ${path}`).toBe(reads ? 200 : path.includes("receipts") ? 404 : 403);
      const out = await api(method, path, { token: outsider.session.accessToken, ...(payload !== undefined && { body: payload }) });
      expect(out.status, `outsider: ${method} ${path}`).toBe(404);
      expect(out.json).toMatchObject({ error: { code: "not_found" } });
    }
    // A post signed with the subscriber's own identity key is still not theirs to make.
    const { socket } = await connect(subscriber);
    const post = body("spam");
    const signature = xeddsaSign(
      subscriber.identity!.privateKey,
      channelPostSignedBytes({ group: c, from: subscriber.session.userId, fromDevice: subscriber.session.deviceId, id: "spam" }, fromBase64(post)),
    );
    expect(await socket.request({ type: "group_send", id: "spam", group: c, epoch: 1, body: post, signature: toBase64(signature) })).toMatchObject({
      type: "error",
      code: "forbidden",
    });
    expect(await groupRows(c)).toEqual(before);
  });

  it("routes outside any group need a valid, current token and act for its user only", async () => {
    const alice = await registerUser();
    const bob = await registerUser();
    const group = await createGroup(alice, [bob]);
    const invite = await api("POST", `/v1/groups/${group.groupId}/invites`, { token: alice.session.accessToken, body: {} });
    const token = (invite.json as { token: string }).token;
    await fannedOut(group.groupId);
    const before = await groupRows(group.groupId);
    const forged = `${alice.session.accessToken.split(".").slice(0, 2).join(".")}.${"A".repeat(86)}`;
    for (const bearer of [undefined, "garbage", forged]) {
      for (const [method, path, payload] of [
        ["POST", "/v1/groups", { members: [] }],
        ["GET", "/v1/groups"],
        ["POST", "/v1/groups/join", { token }],
        ["GET", `/v1/groups/${group.groupId}`],
      ] as [string, string, unknown?][]) {
        const res = await api(method, path, { ...(bearer && { token: bearer }), ...(payload !== undefined && { body: payload }) });
        expect(res.status, `${bearer?.slice(0, 8)}: ${method} ${path}`).toBe(401);
        expect(res.json).toMatchObject({ error: { code: "unauthorized" } });
        expect(res.headers.get("www-authenticate")).toMatch(/^Bearer /);
      }
    }
    // A socket needs a token too.
    const { first } = await connect({ token: "garbage" }).catch(() => ({ first: { type: "refused" } as const }));
    expect(first.type).not.toBe("ready");
    // Each user's list is their own: Bob's token lists Bob's groups (one), an unrelated user's lists none.
    const carol = await registerUser();
    expect((await api("GET", "/v1/groups", { token: bob.session.accessToken })).json).toEqual({ groups: [{ groupId: group.groupId, kind: "group", fanout: "write" }] });
    expect((await api("GET", "/v1/groups", { token: carol.session.accessToken })).json).toEqual({ groups: [] });
    expect(await groupRows(group.groupId)).toEqual(before);
    expect((await inboxRows(carol)).length).toBe(0);
  });
});
