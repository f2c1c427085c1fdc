/** {@link MemoryStore}: a {@link RelayStore} in memory, for tests, bots and short-lived clients. */
import { inRange } from "./range";
import type { Entry, KeyRange, RelayStore, TableName, Tables, WriteOp } from "./types";

/**
 * Keeps every table in a `Map`; records are copied in and out (`structuredClone`), so callers never share
 * objects with the store. Nothing survives the process.
 * @example
 * const relay = await Relay.register({ url, phone, store: new MemoryStore(), code: askUser });
 */
export class MemoryStore implements RelayStore {
  private readonly tables = new Map<TableName, Map<string, unknown>>();

  private table(name: TableName): Map<string, unknown> {
    let table = this.tables.get(name);
    if (!table) this.tables.set(name, (table = new Map()));
    return table;
  }

  async get<T extends TableName>(table: T, key: string): Promise<Tables[T] | undefined> {
    const value = this.table(table).get(key);
    return value === undefined ? undefined : (structuredClone(value) as Tables[T]);
  }

  async list<T extends TableName>(table: T, range: KeyRange = {}): Promise<Entry<Tables[T]>[]> {
    const keys = [...this.table(table).keys()].filter((k) => inRange(k, range)).sort();
    if (range.reverse) keys.reverse();
    const limited = range.limit === undefined ? keys : keys.slice(0, range.limit);
    return limited.map((key) => ({ key, value: structuredClone(this.table(table).get(key)) as Tables[T] }));
  }

  async write(ops: readonly WriteOp[]): Promise<void> {
    const copies = ops.map((op) => ({ ...op, value: op.value === undefined ? undefined : structuredClone(op.value) }));
    for (const op of copies) {
      if (op.value === undefined) this.table(op.table).delete(op.key);
      else this.table(op.table).set(op.key, op.value);
    }
  }

  async clear(): Promise<void> {
    this.tables.clear();
  }

  async close(): Promise<void> {}
}
