/**
 * {@link SqliteStore}: a {@link RelayStore} in a SQLite file through Node's built-in `node:sqlite`, so a
 * restarted Node client keeps its account, keys, sessions, history and outbox. Node only: import it from
 * `client/node.ts`, never from the browser entry.
 */
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { decodeRecord, encodeRecord } from "./codec";
import { bounds } from "./range";
import type { Entry, KeyRange, RelayStore, TableName, Tables, WriteOp } from "./types";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS records (
  tbl TEXT NOT NULL,
  k   TEXT NOT NULL,
  v   TEXT NOT NULL,
  PRIMARY KEY (tbl, k)
) WITHOUT ROWID;`;

/**
 * Every table in one SQLite table `(tbl, k, v)`, records as JSON text (bytes as base64). WAL mode with
 * `synchronous=FULL`: a batch that `write` returned from survives a crash of the process or the machine.
 * @example
 * import { Relay, SqliteStore } from "relay/client/node";
 * const relay = await Relay.connect({ store: new SqliteStore("./alice.db") });
 */
export class SqliteStore implements RelayStore {
  private readonly db: DatabaseSync;
  private readonly statements: {
    get: StatementSync;
    put: StatementSync;
    del: StatementSync;
  };

  /**
   * Opens (creating if needed) the SQLite database at `path` (`":memory:"` for a throwaway one).
   * @example
   * const store = new SqliteStore("/var/lib/bot/relay.db");
   */
  constructor(path: string) {
    this.db = new DatabaseSync(path);
    this.db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;");
    this.db.exec(SCHEMA);
    this.statements = {
      get: this.db.prepare("SELECT v FROM records WHERE tbl = ? AND k = ?"),
      put: this.db.prepare("INSERT OR REPLACE INTO records (tbl, k, v) VALUES (?, ?, ?)"),
      del: this.db.prepare("DELETE FROM records WHERE tbl = ? AND k = ?"),
    };
  }

  async get<T extends TableName>(table: T, key: string): Promise<Tables[T] | undefined> {
    const row = this.statements.get.get(table, key) as { v: string } | undefined;
    return row ? decodeRecord<Tables[T]>(row.v) : undefined;
  }

  async list<T extends TableName>(table: T, range: KeyRange = {}): Promise<Entry<Tables[T]>[]> {
    const { lower, lowerOpen, upper } = bounds(range);
    const where = ["tbl = ?"];
    const args: (string | number)[] = [table];
    if (lower !== undefined) {
      where.push(lowerOpen ? "k > ?" : "k >= ?");
      args.push(lower);
    }
    if (upper !== undefined) {
      where.push("k < ?");
      args.push(upper);
    }
    let sql = `SELECT k, v FROM records WHERE ${where.join(" AND ")} ORDER BY k ${range.reverse ? "DESC" : "ASC"}`;
    if (range.limit !== undefined) {
      sql += " LIMIT ?";
      args.push(range.limit);
    }
    const rows = this.db.prepare(sql).all(...args) as { k: string; v: string }[];
    return rows.map((row) => ({ key: row.k, value: decodeRecord<Tables[T]>(row.v) }));
  }

  async write(ops: readonly WriteOp[]): Promise<void> {
    if (ops.length === 0) return;
    const encoded = ops.map((op) => {
      const text = op.value === undefined ? undefined : encodeRecord(op.value);
      if (op.value !== undefined && typeof text !== "string") throw new TypeError(`${op.table}/${op.key}: record is not serializable`);
      return { op, text };
    });
    this.db.exec("BEGIN IMMEDIATE");
    try {
      for (const { op, text } of encoded) {
        if (text === undefined) this.statements.del.run(op.table, op.key);
        else this.statements.put.run(op.table, op.key, text);
      }
      this.db.exec("COMMIT");
    } catch (error) {
      this.db.exec("ROLLBACK");
      throw error;
    }
  }

  async clear(): Promise<void> {
    this.db.exec("DELETE FROM records");
  }

  async close(): Promise<void> {
    if (this.db.isOpen) this.db.close();
  }
}
