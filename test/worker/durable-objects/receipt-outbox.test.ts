/** The receipt outbox's alarm: kept ahead of a fast conversation, never later than a receipt that is due. */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { ReceiptDelivery } from "../../../durable-objects/inbox";
import { RECEIPT_CONFIRM_WAIT_MS, RECEIPT_RIDE_WAIT_MS, ReceiptOutbox } from "../../../durable-objects/receipt-outbox";
import { ensureSchema } from "../../../durable-objects/schema";
import { USER_SCHEMA } from "../../../durable-objects/user-schema";

const owedTo = (target: string, id: string): { target: string; receipt: ReceiptDelivery } => ({
  target,
  receipt: { id, receipt: "delivered", from: "bob", fromDevice: 1, refs: [{ device: 1, id }], ts: 0 },
});

describe("ReceiptOutbox alarm", () => {
  it("moves an alarm about to fire past a fast conversation's calls, but never past a receipt that is due", async () => {
    const stub = env.USER.get(env.USER.idFromName(`outbox-${crypto.randomUUID()}`));
    await runInDurableObject(stub, async (_instance, state) => {
      ensureSchema(state.storage.sql, USER_SCHEMA);
      const handedOver: string[] = [];
      const outbox = new ReceiptOutbox(
        state.storage.sql,
        state.storage,
        async (_target, receipts) => void handedOver.push(...receipts.map((r) => r.id)),
        () => undefined,
      );
      await outbox.retry(); // what the first alarm of an object's life does: it reads what SQLite holds (nothing)
      const t0 = Date.now();
      outbox.requestAlarmBy(t0 + RECEIPT_RIDE_WAIT_MS); // as a held acknowledgement does
      outbox.keepAlarmAhead(t0 + 5_000); // a call that wrote everything held, when the alarm is about to fire
      expect(await state.storage.getAlarm()).toBe(t0 + 5_000 + RECEIPT_RIDE_WAIT_MS);
      outbox.keepAlarmAhead(t0 + 5_050); // not about to fire: left where it is (each move is a write)
      expect(await state.storage.getAlarm()).toBe(t0 + 5_000 + RECEIPT_RIDE_WAIT_MS);

      // Alice's object calls twice in quick succession (a fast conversation): r1 waits for her next call, which
      // carries it back; it is then due for its confirmation, and no later call moves the alarm past that.
      outbox.ride("alice", []);
      outbox.ride("alice", []);
      outbox.add([owedTo("alice", "r1")], () => true);
      expect(handedOver).toEqual([]);
      const before = Date.now();
      expect(outbox.ride("alice", [])?.map((r) => r.id)).toEqual(["r1"]);
      const after = Date.now();
      outbox.keepAlarmAhead(after + RECEIPT_CONFIRM_WAIT_MS - 10);
      const alarm = await state.storage.getAlarm();
      expect(alarm).toBeGreaterThanOrEqual(before + RECEIPT_CONFIRM_WAIT_MS);
      expect(alarm).toBeLessThanOrEqual(after + RECEIPT_CONFIRM_WAIT_MS);
    });
  });

  it("leaves the alarm alone while receipts of an earlier life may still be in SQLite", async () => {
    const stub = env.USER.get(env.USER.idFromName(`outbox-${crypto.randomUUID()}`));
    await runInDurableObject(stub, async (_instance, state) => {
      ensureSchema(state.storage.sql, USER_SCHEMA);
      const outbox = new ReceiptOutbox(state.storage.sql, state.storage, async () => undefined, () => undefined);
      const t0 = Date.now();
      outbox.requestAlarmBy(t0 + 60_000);
      outbox.keepAlarmAhead(t0 + 59_950); // nothing read back yet: the alarm that reads them must still fire
      expect(await state.storage.getAlarm()).toBe(t0 + 60_000);
    });
  });
});
