/** Groups and channels: creation, membership, invites and the log, routed to each group's GroupDO. */
import { Hono, type Context } from "hono";
import { validator } from "hono/validator";
import type { Outcome } from "../../durable-objects/group";
import { newOpaqueToken, sha256Base64Url } from "../auth/tokens";
import { RelayError } from "../protocol/errors";
import {
  INVITE_TOKEN,
  addMembersSchema,
  createGroupSchema,
  createInviteSchema,
  decideRequestSchema,
  joinSchema,
  readLogQuerySchema,
  setRoleSchema,
  updateInfoSchema,
  type GroupMembership,
  type InviteResponse,
} from "../protocol/groups";
import type { AppEnv } from "./app-types";
import { requireDevice } from "./authenticate";
import { jsonBody } from "./validate";

const UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}";
const GROUP = `/:groupId{${UUID}}`;
const MEMBER = `${GROUP}/members/:userId{${UUID}}`;

export const groups = new Hono<AppEnv>()
  .use(requireDevice)
  .post("/", jsonBody(createGroupSchema), async (c) => {
    const body = c.req.valid("json");
    const caller = c.get("device");
    const members = body.members.filter((m) => m !== caller.userId);
    await requireUsers(c.env.DB, members);
    const groupId = crypto.randomUUID();
    const state = unwrap(await group(c, groupId).create(caller, groupId, body.kind, members, body.info ?? null));
    return c.json(state, 201);
  })
  .get("/", async (c) => {
    const { userId } = c.get("device");
    const list: GroupMembership[] = await c.env.USER.get(c.env.USER.idFromName(userId)).groupList();
    return c.json({ groups: list });
  })
  .post("/join", jsonBody(joinSchema), async (c) => {
    const [, groupId, secret] = INVITE_TOKEN.exec(c.req.valid("json").token)!;
    const result = unwrap(await group(c, groupId!).join(c.get("device"), await sha256Base64Url(secret!)));
    return c.json(result, result.joined ? 200 : 202);
  })
  .get(GROUP, async (c) => c.json(unwrap(await group(c).state(c.get("device")))))
  .put(`${GROUP}/info`, jsonBody(updateInfoSchema), async (c) => {
    return c.json(unwrap(await group(c).updateInfo(c.get("device"), c.req.valid("json").info)));
  })
  .post(`${GROUP}/members`, jsonBody(addMembersSchema), async (c) => {
    const { members } = c.req.valid("json");
    await requireUsers(c.env.DB, members);
    return c.json(unwrap(await group(c).addMembers(c.get("device"), members)));
  })
  .delete(MEMBER, async (c) => {
    unwrap(await group(c).removeMember(c.get("device"), c.req.param("userId")));
    return c.body(null, 204);
  })
  .put(`${MEMBER}/role`, jsonBody(setRoleSchema), async (c) => {
    return c.json(unwrap(await group(c).setRole(c.get("device"), c.req.param("userId"), c.req.valid("json").role)));
  })
  .post(`${GROUP}/invites`, jsonBody(createInviteSchema), async (c) => {
    const groupId = c.req.param("groupId");
    const secret = newOpaqueToken(32);
    const { approval } = unwrap(await group(c).createInvite(c.get("device"), await sha256Base64Url(secret), c.req.valid("json").approval));
    return c.json({ token: `${groupId}.${secret}`, approval } satisfies InviteResponse, 201);
  })
  .delete(`${GROUP}/invites/:token`, async (c) => {
    const match = INVITE_TOKEN.exec(c.req.param("token"));
    if (!match || match[1] !== c.req.param("groupId")) throw new RelayError(400, "bad_request", "malformed invite token");
    unwrap(await group(c).revokeInvite(c.get("device"), await sha256Base64Url(match[2]!)));
    return c.body(null, 204);
  })
  .get(`${GROUP}/requests`, async (c) => c.json({ requests: unwrap(await group(c).joinRequests(c.get("device"))) }))
  .post(`${GROUP}/requests/:userId{${UUID}}`, jsonBody(decideRequestSchema), async (c) => {
    unwrap(await group(c).decideRequest(c.get("device"), c.req.param("userId"), c.req.valid("json").approve));
    return c.body(null, 204);
  })
  .get(`${GROUP}/messages`, queryOf(readLogQuerySchema), async (c) => {
    const { after, limit } = c.req.valid("query");
    const page = unwrap(await group(c).readLog(c.get("device"), after, limit));
    return c.body(page, 200, { "content-type": "application/json" });
  })
  .get(`${GROUP}/messages/:seq{[0-9]{1,15}}/receipts`, async (c) => {
    return c.json(unwrap(await group(c).receiptList(c.get("device"), Number(c.req.param("seq")))));
  });

function group(c: Context<AppEnv>, groupId = c.req.param("groupId")!) {
  return c.env.GROUP.get(c.env.GROUP.idFromName(groupId));
}

/** A GroupDO's refusal becomes the HTTP error; its value is returned. */
function unwrap<T>(outcome: Outcome<T>): T {
  if (outcome.ok) return outcome.value;
  throw new RelayError(outcome.status, outcome.code, outcome.message, outcome.group ? { group: outcome.group } : {});
}

/** Refuses (404) a member list naming a user who has no account. */
async function requireUsers(db: D1Database, userIds: string[]): Promise<void> {
  if (userIds.length === 0) return;
  const found = await db
    .prepare("SELECT user_id FROM accounts WHERE user_id IN (SELECT value FROM json_each(?))")
    .bind(JSON.stringify(userIds))
    .all<{ user_id: string }>();
  const known = new Set(found.results.map((r) => r.user_id));
  const unknown = userIds.find((u) => !known.has(u));
  if (unknown) throw new RelayError(404, "not_found", `no user ${unknown}`);
}

function queryOf<S extends typeof readLogQuerySchema>(schema: S) {
  return validator("query", (value) => {
    const result = schema.safeParse(value);
    if (result.success) return result.data;
    const issue = result.error.issues[0];
    throw new RelayError(400, "bad_request", `${issue?.path.join(".") || "query"}: ${issue?.message ?? "invalid"}`);
  });
}
