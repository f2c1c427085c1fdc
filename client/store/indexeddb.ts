/** {@link IndexedDbStore}: a {@link RelayStore} on IndexedDB, for browsers (and any runtime with an `indexedDB`). */
import { bounds } from "./range";
import type { Entry, KeyRange, RelayStore, TableName, Tables, WriteOp } from "./types";

const OBJECT_STORE = "records";
const VERSION = 1;

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error("IndexedDB request failed"));
  });
}

function done(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error ?? new Error("IndexedDB transaction failed"));
    tx.onabort = () => reject(tx.error ?? new Error("IndexedDB transaction aborted"));
  });
}

/** The IDB key range of `range` within `table` (keys are `[table, key]`; an empty array sorts after every string). */
function keyRange(table: TableName, range: KeyRange): IDBKeyRange {
  const { lower, lowerOpen, upper } = bounds(range);
  return IDBKeyRange.bound([table, lower ?? ""], upper === undefined ? [table, []] : [table, upper], lower !== undefined && lowerOpen, true);
}

/**
 * One object store holding every table, keyed by `[table, key]`; records are stored as structured clones.
 * A write batch is one `readwrite` transaction, so it lands whole or not at all.
 * @example
 * const store = await IndexedDbStore.open("relay");
 * const relay = await Relay.connect({ store });
 */
export class IndexedDbStore implements RelayStore {
  private constructor(private readonly db: IDBDatabase) {}

  /**
   * Opens (creating if needed) the database `name`. `factory` defaults to the global `indexedDB`.
   * @example
   * const store = await IndexedDbStore.open("relay-alice");
   */
  static async open(name = "relay", factory: IDBFactory = globalThis.indexedDB): Promise<IndexedDbStore> {
    if (!factory) throw new Error("IndexedDB is not available in this runtime");
    const req = factory.open(name, VERSION);
    req.onupgradeneeded = () => {
      if (!req.result.objectStoreNames.contains(OBJECT_STORE)) req.result.createObjectStore(OBJECT_STORE);
    };
    return new IndexedDbStore(await request(req));
  }

  async get<T extends TableName>(table: T, key: string): Promise<Tables[T] | undefined> {
    const tx = this.db.transaction(OBJECT_STORE, "readonly");
    return (await request(tx.objectStore(OBJECT_STORE).get([table, key]))) as Tables[T] | undefined;
  }

  async list<T extends TableName>(table: T, range: KeyRange = {}): Promise<Entry<Tables[T]>[]> {
    const store = this.db.transaction(OBJECT_STORE, "readonly").objectStore(OBJECT_STORE);
    const out: Entry<Tables[T]>[] = [];
    const limit = range.limit ?? Infinity;
    if (limit <= 0) return out;
    await new Promise<void>((resolve, reject) => {
      const cursor = store.openCursor(keyRange(table, range), range.reverse ? "prev" : "next");
      cursor.onerror = () => reject(cursor.error ?? new Error("IndexedDB cursor failed"));
      cursor.onsuccess = () => {
        const c = cursor.result;
        if (!c) return resolve();
        out.push({ key: (c.key as [string, string])[1], value: c.value as Tables[T] });
        if (out.length >= limit) return resolve();
        c.continue();
      };
    });
    return out;
  }

  async write(ops: readonly WriteOp[]): Promise<void> {
    if (ops.length === 0) return;
    const tx = this.db.transaction(OBJECT_STORE, "readwrite");
    const store = tx.objectStore(OBJECT_STORE);
    const finished = done(tx);
    try {
      for (const op of ops) {
        if (op.value === undefined) store.delete([op.table, op.key]);
        else store.put(op.value, [op.table, op.key]);
      }
    } catch (error) {
      tx.abort();
      await finished.catch(() => undefined);
      throw error;
    }
    await finished;
  }

  async clear(): Promise<void> {
    const tx = this.db.transaction(OBJECT_STORE, "readwrite");
    tx.objectStore(OBJECT_STORE).clear();
    await done(tx);
  }

  async close(): Promise<void> {
    this.db.close();
  }
}
