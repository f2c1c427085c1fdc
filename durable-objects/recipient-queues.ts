/**
 * Group commit towards other UserDOs: at most one delivery call in flight per recipient; sends that
 * arrive meanwhile travel together in the next call, stored by the recipient in one transaction.
 */
import type { DeliverResult, InboundMessage } from "./user";

const MAX_BATCH = 128;

interface Waiting {
  item: InboundMessage;
  resolve(result: DeliverResult): void;
  reject(error: unknown): void;
}

export class RecipientQueues {
  private readonly queues = new Map<string, Waiting[]>();

  constructor(private readonly deliverTo: (userId: string, items: InboundMessage[]) => Promise<DeliverResult[]>) {}

  /** Delivers `item` to `userId`'s UserDO, batched with concurrent sends to the same user, in order. */
  deliver(userId: string, item: InboundMessage): Promise<DeliverResult> {
    return new Promise((resolve, reject) => {
      const queue = this.queues.get(userId);
      if (queue) {
        queue.push({ item, resolve, reject });
        return;
      }
      this.queues.set(userId, [{ item, resolve, reject }]);
      void this.drain(userId);
    });
  }

  private async drain(userId: string): Promise<void> {
    const queue = this.queues.get(userId)!;
    while (queue.length > 0) {
      const batch = queue.splice(0, MAX_BATCH);
      try {
        const results = await this.deliverTo(userId, batch.map((w) => w.item));
        batch.forEach((w, i) => w.resolve(results[i]!));
      } catch (error) {
        batch.forEach((w) => w.reject(error));
      }
    }
    this.queues.delete(userId);
  }
}
