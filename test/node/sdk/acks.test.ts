/**
 * When the SDK acknowledges delivered pages: a page holding a message at once (its sender's delivered receipt
 * waits for it), pages of receipts only together, after a delay or once enough of them wait; receipts pushed
 * live (`receipts` frames) together by batch id in the same way.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Acknowledger, LiveReceiptAcknowledger } from "../../../client/transport/acks";

function acknowledger(maxPending = 10) {
  const acks: { generation: number; upTo: number }[] = [];
  const a = new Acknowledger({ ack: (generation, upTo) => (acks.push({ generation, upTo }), true) }, 1_000, maxPending);
  return { a, acks };
}

describe("acknowledgements", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("a page with a message is acknowledged at once, and covers the receipt pages waiting before it", () => {
    const { a, acks } = acknowledger();
    a.stored(1, 3, 3, true);
    expect(acks).toEqual([]);
    a.stored(1, 4, 1, false);
    expect(acks).toEqual([{ generation: 1, upTo: 4 }]);
    vi.advanceTimersByTime(5_000);
    expect(acks).toHaveLength(1); // nothing left waiting
  });

  it("pages of receipts only are acknowledged together once the delay has passed", () => {
    const { a, acks } = acknowledger();
    a.stored(1, 2, 2, true);
    vi.advanceTimersByTime(600);
    a.stored(1, 5, 3, true);
    vi.advanceTimersByTime(399);
    expect(acks).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(acks).toEqual([{ generation: 1, upTo: 5 }]);
  });

  it("receipt pages are acknowledged at once when enough of them wait", () => {
    const { a, acks } = acknowledger(4);
    a.stored(1, 3, 3, true);
    a.stored(1, 4, 1, true);
    expect(acks).toEqual([{ generation: 1, upTo: 4 }]);
  });

  it("what waited on a socket that closed is not acknowledged on the next one (the server redelivers it)", () => {
    const { a, acks } = acknowledger();
    a.stored(1, 3, 3, true);
    a.stored(2, 1, 1, true);
    vi.advanceTimersByTime(1_000);
    expect(acks).toEqual([{ generation: 2, upTo: 1 }]);
  });

  it("flush acknowledges what waits, once", () => {
    const { a, acks } = acknowledger();
    a.stored(1, 2, 2, true);
    a.flush();
    a.flush();
    vi.advanceTimersByTime(1_000);
    expect(acks).toEqual([{ generation: 1, upTo: 2 }]);
  });
});

describe("acknowledgements of live receipts", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  function liveAcknowledger(maxPending = 3) {
    const acks: string[][] = [];
    const a = new LiveReceiptAcknowledger({ ackReceipts: (batches) => (acks.push(batches), true) }, 1_000, maxPending);
    return { a, acks };
  }

  it("names every batch stored within the delay in one acknowledgement", () => {
    const { a, acks } = liveAcknowledger();
    a.stored("k.1");
    vi.advanceTimersByTime(999);
    a.stored("k.2");
    expect(acks).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(acks).toEqual([["k.1", "k.2"]]);
    vi.advanceTimersByTime(5_000);
    expect(acks).toHaveLength(1);
  });

  it("acknowledges at once when enough batches wait, and flush sends what waits once", () => {
    const { a, acks } = liveAcknowledger();
    for (const batch of ["k.1", "k.2", "k.3", "k.4"]) a.stored(batch);
    expect(acks).toEqual([["k.1", "k.2", "k.3"]]);
    a.flush();
    a.flush();
    vi.advanceTimersByTime(1_000);
    expect(acks).toEqual([["k.1", "k.2", "k.3"], ["k.4"]]);
  });
});
