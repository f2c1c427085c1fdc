/**
 * The outbox: sends and read receipts are stored first and go out in order, one at a time, whenever the
 * connection is open, each retried with its SAME id until the server answers `sent` (the server dedupes
 * on it). A `mismatched_devices` answer is repaired (sessions for missing devices, none for extra or stale
 * ones) and the send retried; a changed identity holds that recipient's sends until the app trusts it.
 */
import type { Core } from "../core";
import { RelayApiError } from "../errors";
import { untrustedOps } from "../identity/pending";
import { IdentityBlockedError, buildSendFrame } from "../sessions/fanout";
import { repairDevices } from "../sessions/repair";
import { DrainLoop } from "../util/drain-loop";
import { StagedProtocolStore } from "../sessions/staged-store";
import { numberKey } from "../store/keys";
import { put, type WriteOp } from "../store/types";
import { advanceStatus } from "./history";
import type { MessageRecord, OutboxItem, OutboxRead, OutboxSend } from "./types";

/** Errors after which a send can never succeed: it is marked failed and dropped. */
const PERMANENT = new Set(["not_found", "bad_request", "too_large", "forbidden", "unknown_frame"]);

/**
 * The outbox key of an item with order value `order` (from an `OrderClock`): queue order is key order.
 * @example
 * put("outbox", outboxKey(clock.next(Date.now()), id), item);
 */
export function outboxKey(order: number, id: string): string {
  return `${numberKey(order, 17)}.${id}`;
}

/**
 * The order value an outbox key was made with (0 for none): a restarted client continues after it.
 * @example
 * const clock = new OrderClock(outboxOrder((await store.list("outbox", { reverse: true, limit: 1 }))[0]?.key));
 */
export function outboxOrder(key: string | undefined): number {
  return key ? Number(key.slice(0, key.indexOf("."))) || 0 : 0;
}

/**
 * Drains the stored outbox over the connection.
 * @example
 * const outbox = new Outbox(core);
 * await core.store.write([...storeMessageOps(record), put("outbox", outboxKey(clock.next(now), id), item)]);
 * outbox.kick();
 */
export class Outbox extends DrainLoop {
  constructor(private readonly core: Core) {
    super((error) => core.events.emit("error", error));
  }

  protected async drain(): Promise<void> {
    while (!this.paused && this.core.connection.isOpen) {
      const next = await this.nextItem();
      if (!next) return;
      let ok: boolean;
      try {
        ok = next.value.kind === "send" ? await this.processSend(next.key, next.value) : await this.processRead(next.key, next.value);
      } catch (error) {
        // The server could not be reached for bundles, or the store failed: report, wait, try again.
        this.core.events.emit("error", error);
        await delay(this.core.tuning.retryDelayMs);
        ok = true;
      }
      if (!ok) return;
    }
  }

  /** The first item not held back by a changed identity (items after a held one to the same user wait too: order). */
  private async nextItem(): Promise<{ key: string; value: OutboxItem } | undefined> {
    const held = new Set<string>();
    for (const entry of await this.core.store.list("outbox")) {
      const item = entry.value;
      if (held.has(item.to)) continue;
      if (item.kind === "send" && item.blockedBy !== undefined) {
        held.add(item.to);
        continue;
      }
      return entry;
    }
    return undefined;
  }

  /** One attempt at a send; false: stop draining for now. */
  private async processSend(key: string, item: OutboxSend): Promise<boolean> {
    const core = this.core;
    if (!item.frame) {
      const built = await core.lane.run(async () => {
        const staged = new StagedProtocolStore(core.store, core.local, core.now);
        try {
          const frame = await buildSendFrame(core, staged, item);
          const next: OutboxSend = { ...item, frame };
          await core.store.write([...staged.writes(), put("outbox", key, next)]);
          return next;
        } catch (error) {
          if (error instanceof IdentityBlockedError) return this.block(key, item, staged, error.userId);
          if (error instanceof RelayApiError && error.status === 404) return "unknown" as const;
          throw error;
        }
      });
      if (built === "unknown") {
        this.core.events.emit("error", new Error(`send ${item.id}: unknown recipient ${item.to}`));
        await this.finish(key, item, "failed");
        return true;
      }
      if (!built) return true;
      item = built;
    }
    const answer = await this.core.connection.requestWhileOpen(item.frame!);
    if (!answer) return false;
    if (answer.type === "sent") {
      await this.finish(key, item, "sent", answer.ts);
      return true;
    }
    if (answer.code === "mismatched_devices") {
      if (item.repairs >= core.tuning.maxRepairs) {
        this.paused = true;
        core.events.emit("error", new Error(`send ${item.id}: device lists still mismatched after ${item.repairs} repairs; retrying on the next connection`));
        await core.store.write([put("outbox", key, { ...item, repairs: 0 })]);
        return false;
      }
      await core.lane.run(async () => {
        const staged = new StagedProtocolStore(core.store, core.local, core.now);
        const next: OutboxSend = { ...item, frame: undefined, repairs: item.repairs + 1 };
        delete next.frame;
        try {
          await repairDevices(core, staged, answer.mismatches ?? []);
          await core.store.write([...staged.writes(), put("outbox", key, next)]);
        } catch (error) {
          if (error instanceof IdentityBlockedError) return this.block(key, next, staged, error.userId);
          throw error;
        }
      });
      return true;
    }
    if (PERMANENT.has(answer.code)) {
      core.events.emit("error", new Error(`send ${item.id} refused: ${answer.code}: ${answer.message}`));
      await this.finish(key, item, "failed");
      return true;
    }
    await delay(core.tuning.retryDelayMs);
    return true;
  }

  private async processRead(key: string, item: OutboxRead): Promise<boolean> {
    const frame = item.frame ?? { type: "read" as const, id: item.id, to: item.to, refs: item.refs };
    const answer = await this.core.connection.requestWhileOpen(frame);
    if (!answer) return false;
    if (answer.type === "sent" || PERMANENT.has(answer.code)) {
      await this.core.store.write([put("outbox", key, undefined)]);
      return true;
    }
    await delay(this.core.tuning.retryDelayMs);
    return true;
  }

  private async block(key: string, item: OutboxSend, staged: StagedProtocolStore, userId: string): Promise<undefined> {
    const { ops, addresses } = untrustedOps(staged, this.core.now());
    const next: OutboxSend = { ...item, blockedBy: userId };
    delete next.frame;
    await this.core.store.write([...ops, put("outbox", key, next)]);
    for (const address of addresses) this.core.events.emit("identityChanged", address);
    return undefined;
  }

  private async finish(key: string, item: OutboxSend, status: "sent" | "failed", serverTs?: number): Promise<void> {
    const ops: WriteOp[] = [put("outbox", key, undefined)];
    const message = await this.core.store.get("messages", item.messageKey);
    const updated: MessageRecord | undefined = message && advanceStatus(message, status, serverTs);
    if (updated) ops.push(put("messages", updated.key, updated));
    await this.core.store.write(ops);
    if (updated) this.core.events.emit("status", { id: updated.id, conversation: updated.conversation, status: updated.status, message: updated });
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
