/** The groups and channels a user belongs to, in their UserDO: kept by the groups' fan-out, read by `GET /v1/groups`. */
import type { FanoutMode, GroupKind, GroupMembership } from "../src/protocol/groups";

export interface GroupRef {
  groupId: string;
  kind: GroupKind;
  fanout: FanoutMode;
}

export class UserGroups {
  constructor(private readonly sql: SqlStorage) {}

  /** Records that the user joined (or is still in, with this fan-out mode) or left a group. */
  set(group: GroupRef, member: boolean): void {
    if (member) {
      this.sql.exec("INSERT OR REPLACE INTO groups (group_id, kind, fanout) VALUES (?, ?, ?)", group.groupId, group.kind, group.fanout);
    } else {
      this.sql.exec("DELETE FROM groups WHERE group_id = ?", group.groupId);
    }
  }

  list(): GroupMembership[] {
    return this.sql
      .exec<{ group_id: string; kind: GroupKind; fanout: FanoutMode }>("SELECT group_id, kind, fanout FROM groups ORDER BY group_id")
      .toArray()
      .map((r) => ({ groupId: r.group_id, kind: r.kind, fanout: r.fanout }));
  }

  /** Groups whose members read the log by cursor (and are told of new entries while online). */
  readByCursor(): string[] {
    return this.sql
      .exec<{ group_id: string }>("SELECT group_id FROM groups WHERE fanout = 'read'")
      .toArray()
      .map((r) => r.group_id);
  }
}
