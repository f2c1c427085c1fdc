/** The group machinery of one `Relay` (internal): the routes, the group outbox, the log reader and the frames they answer. */
import type { ServerFrame } from "../../src/protocol/frames";
import type { Core } from "../core";
import { RelayApiError } from "../errors";
import { put } from "../store/types";
import { GroupsApi } from "./api";
import { GroupLogReader } from "./log-reader";
import { GroupOutbox } from "./send";
import { loadGroup, storeGroupOps } from "./state";
import type { GroupRecord } from "./types";

/**
 * @example
 * const groups = new GroupClient(core);
 * connection.onReady = () => groups.onReady();
 * connection.onOther = (frame) => groups.onFrame(frame);
 */
export class GroupClient {
  readonly api: GroupsApi;
  readonly outbox: GroupOutbox;
  readonly reader: GroupLogReader;

  constructor(readonly core: Core) {
    this.api = new GroupsApi(core.api);
    this.outbox = new GroupOutbox(core, (id) => this.refresh(id));
    this.reader = new GroupLogReader(core, this.api, (id) => this.known(id));
  }

  /**
   * Fetches the group's state and stores it; undefined (and the stored state marked `left`) when we are not a
   * member any more. Other errors are thrown.
   * @example
   * const group = await groups.refresh(groupId);
   */
  async refresh(groupId: string): Promise<GroupRecord | undefined> {
    try {
      const state = await this.api.get(groupId);
      await this.core.store.write(storeGroupOps(state));
      return state;
    } catch (error) {
      if (!(error instanceof RelayApiError) || (error.status !== 404 && error.status !== 403)) throw error;
      const stored = await loadGroup(this.core.store, groupId);
      if (stored) await this.core.store.write([put("groups", groupId, { ...stored, left: true })]);
      return undefined;
    }
  }

  /**
   * The stored state, fetched when there is none or it is stale.
   * @example
   * const group = await groups.known(groupId);
   */
  async known(groupId: string): Promise<GroupRecord | undefined> {
    const stored = await loadGroup(this.core.store, groupId);
    if (stored && !stored.stale) return stored;
    return (await this.refresh(groupId)) ?? stored;
  }

  /** The connection is up: send what waits. */
  onReady(): void {
    this.outbox.kick({ resume: true });
  }

  /** An inbox batch was stored: log entries held for a missing sender key may read now. */
  afterDeliver(): void {
    this.reader.retryHeld();
  }

  /** Frames for groups; false when the frame is not one. */
  onFrame(frame: ServerFrame): boolean {
    if (frame.type === "group_notice") this.reader.notice(frame.group, frame.upTo, frame.entries);
    else if (frame.type === "group_receipts") this.core.events.emit("groupReceipts", { group: frame.group, counts: frame.counts });
    else return false;
    return true;
  }

  /** Resolves when sends and log reads in progress are over. */
  async idle(): Promise<void> {
    await Promise.all([this.outbox.idle(), this.reader.idle()]);
  }
}
