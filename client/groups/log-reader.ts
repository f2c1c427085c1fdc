/**
 * Fan-out on read: channels and large groups keep one copy of each entry in the group's log. On a `group_notice`
 * (sent live and right after connecting) or an explicit read, the reader pages through
 * `GET /v1/groups/:id/messages?after=<cursor>` until the group's head, reads each entry in order and stores the
 * cursor with each entry's outcome, so a restarted client continues where it stopped. One read per group at a time.
 */
import type { GroupLogEntry } from "../../src/protocol/groups";
import type { Core } from "../core";
import { addressKey } from "../store/keys";
import { put } from "../store/types";
import type { GroupsApi } from "./api";
import { applyGroupEntry, type EntryContext } from "./receive";
import { signerKey } from "./signers";
import type { GroupRecord } from "./types";

/** Times a log entry whose sender key has not arrived is left unread (for a later read) before it is skipped. */
const MISSING_KEY_HOLDS = 3;

/**
 * @example
 * const reader = new GroupLogReader(core, groupsApi, (id) => loadOrFetch(id));
 * reader.notice(channelId, 57);
 * await reader.read(channelId);
 */
export class GroupLogReader {
  private readonly running = new Map<string, Promise<void>>();
  private readonly again = new Set<string>();
  private readonly holds = new Map<string, number>();

  /** `group` gives a group's stored state, fetching it when missing (undefined: not a member). */
  constructor(
    private readonly core: Core,
    private readonly api: GroupsApi,
    private readonly group: (groupId: string) => Promise<GroupRecord | undefined>,
  ) {}

  /**
   * A `group_notice`: reads the log in the background when the cursor is behind `upTo`.
   * @example
   * reader.notice(frame.group, frame.upTo);
   */
  notice(groupId: string, upTo: number, entries?: GroupLogEntry[]): void {
    void (async () => {
      if (((await this.core.store.get("groupCursors", groupId)) ?? 0) >= upTo) return;
      await this.read(groupId, entries);
    })().catch((error) => this.core.events.emit("error", error));
  }

  /**
   * Reads the log of `groupId` up to its head (joining a read in progress and reading again after it).
   * @example
   * await reader.read(channelId);
   */
  read(groupId: string, inline?: GroupLogEntry[]): Promise<void> {
    const current = this.running.get(groupId);
    if (current) {
      this.again.add(groupId);
      return current.then(() => this.running.get(groupId));
    }
    const run = this.catchUp(groupId, inline).finally(() => {
      this.running.delete(groupId);
      if (this.again.delete(groupId)) void this.read(groupId).catch((error) => this.core.events.emit("error", error));
    });
    this.running.set(groupId, run);
    return run;
  }

  /**
   * Resolves when no read is running.
   * @example
   * await reader.idle();
   */
  async idle(): Promise<void> {
    while (this.running.size) await Promise.allSettled([...this.running.values()]);
  }

  /** Groups with a log entry left unread for a missing sender key: read again (after the inbox delivered more). */
  retryHeld(): void {
    for (const key of this.holds.keys()) this.notice(key.slice(0, key.indexOf("|")), Number.MAX_SAFE_INTEGER);
  }

  /** `inline`: entries a notice carried; used instead of a read when they follow the cursor. */
  private async catchUp(groupId: string, inline?: GroupLogEntry[]): Promise<void> {
    const core = this.core;
    const group = await this.group(groupId);
    if (!group || group.left) return;
    // A channel this device has no key for (subscribed on another device): nothing it could read; keep the cursor.
    if (group.kind === "channel" && !(await core.store.get("channelKeys", groupId))) return;
    for (;;) {
      const after = (await core.store.get("groupCursors", groupId)) ?? 0;
      const carried = inline?.[0]?.groupSeq === after + 1 ? inline : undefined;
      inline = undefined;
      const page = carried ? { entries: carried, head: carried[carried.length - 1]!.groupSeq } : await this.api.log(groupId, after);
      if (page.entries.length === 0) return;
      const context = await this.contextFor(group, page.entries);
      const outcome = await core.lane.run(async () => {
        for (const entry of page.entries) {
          const hold = `${groupId}|${entry.groupSeq}`;
          const holds = this.holds.get(hold) ?? 0;
          const result = await applyGroupEntry(core, entry, { ...context, holdMissingKey: holds < MISSING_KEY_HOLDS, extraOps: [put("groupCursors", groupId, entry.groupSeq)] });
          if (result === "missing-key") {
            this.holds.set(hold, holds + 1);
            return "held";
          }
          this.holds.delete(hold);
        }
        return "read";
      });
      const last = page.entries[page.entries.length - 1]!.groupSeq;
      if (outcome === "held" || last >= page.head) return;
    }
  }

  /** The channel key and the posting devices' identity keys a page needs (fetched outside the lane). */
  private async contextFor(group: GroupRecord, entries: GroupLogEntry[]): Promise<EntryContext> {
    if (group.kind !== "channel") return { kind: group.kind };
    const signers = new Map<string, Uint8Array | undefined>();
    for (const entry of entries) {
      if (entry.kind !== "group_message") continue;
      const address = addressKey(entry.from, entry.fromDevice);
      if (!signers.has(address)) signers.set(address, await signerKey(this.core, entry.from, entry.fromDevice));
    }
    const channelKey = await this.core.store.get("channelKeys", group.groupId);
    return { kind: "channel", signers, ...(channelKey && { channelKey }) };
  }
}
