/** The group and channel routes of the Relay HTTP API (README "Groups and channels"), one typed call each. */
import type {
  GroupKind,
  GroupLogPage,
  GroupMembership,
  GroupReceiptList,
  GroupRole,
  GroupState,
  InviteResponse,
  JoinRequest,
  JoinResponse,
} from "../../src/protocol/groups";
import type { RelayApi } from "../http/api";

const path = (groupId: string, rest = "") => `/v1/groups/${encodeURIComponent(groupId)}${rest}`;

/**
 * Group routes over an authenticated {@link RelayApi}.
 * @example
 * const groupsApi = new GroupsApi(api);
 * const state = await groupsApi.create({ kind: "group", members: [bobId] });
 */
export class GroupsApi {
  constructor(private readonly api: RelayApi) {}

  /** `POST /v1/groups`: creates a group or channel; the caller is its first admin. */
  create(body: { kind: GroupKind; members?: string[]; info?: string }): Promise<GroupState> {
    return this.api.call("POST", "/v1/groups", body);
  }

  /** `GET /v1/groups`: the caller's groups and channels. */
  list(): Promise<{ groups: GroupMembership[] }> {
    return this.api.call("GET", "/v1/groups");
  }

  /** `GET /v1/groups/:id`: the group's state (members only). */
  get(groupId: string): Promise<GroupState> {
    return this.api.call("GET", path(groupId));
  }

  /** `PUT /v1/groups/:id/info` (admins). */
  async updateInfo(groupId: string, info: string): Promise<void> {
    await this.api.call("PUT", path(groupId, "/info"), { info });
  }

  /** `POST /v1/groups/:id/members` (admins). */
  async addMembers(groupId: string, members: string[]): Promise<void> {
    await this.api.call("POST", path(groupId, "/members"), { members });
  }

  /** `DELETE /v1/groups/:id/members/:userId` (admins, or the member: leave). */
  async removeMember(groupId: string, userId: string): Promise<void> {
    await this.api.call("DELETE", path(groupId, `/members/${encodeURIComponent(userId)}`));
  }

  /** `PUT /v1/groups/:id/members/:userId/role` (admins). */
  async setRole(groupId: string, userId: string, role: GroupRole): Promise<void> {
    await this.api.call("PUT", path(groupId, `/members/${encodeURIComponent(userId)}/role`), { role });
  }

  /** `POST /v1/groups/:id/invites` (admins). */
  createInvite(groupId: string, approval: boolean): Promise<InviteResponse> {
    return this.api.call("POST", path(groupId, "/invites"), { approval });
  }

  /** `DELETE /v1/groups/:id/invites/:token` (admins). */
  async revokeInvite(groupId: string, token: string): Promise<void> {
    await this.api.call("DELETE", path(groupId, `/invites/${encodeURIComponent(token)}`));
  }

  /** `POST /v1/groups/join`: joins by invite token (or asks to, when the link needs approval). */
  join(token: string): Promise<JoinResponse> {
    return this.api.call("POST", "/v1/groups/join", { token });
  }

  /** `GET /v1/groups/:id/requests` (admins). */
  joinRequests(groupId: string): Promise<{ requests: JoinRequest[] }> {
    return this.api.call("GET", path(groupId, "/requests"));
  }

  /** `POST /v1/groups/:id/requests/:userId` (admins). */
  async decideJoinRequest(groupId: string, userId: string, approve: boolean): Promise<void> {
    await this.api.call("POST", path(groupId, `/requests/${encodeURIComponent(userId)}`), { approve });
  }

  /** `GET /v1/groups/:id/messages?after=N`: log entries after `after` that the caller may read. */
  log(groupId: string, after: number, limit?: number): Promise<GroupLogPage> {
    return this.api.call("GET", path(groupId, `/messages?after=${after}${limit === undefined ? "" : `&limit=${limit}`}`));
  }

  /** `GET /v1/groups/:id/messages/:seq/receipts` (the message's sender only). */
  receipts(groupId: string, groupSeq: number): Promise<GroupReceiptList> {
    return this.api.call("GET", path(groupId, `/messages/${groupSeq}/receipts`));
  }
}
