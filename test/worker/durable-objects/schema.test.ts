/** An object's schema runs once per schema text: a woken object skips it, an edited schema is applied again. */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { ensureSchema } from "../../../durable-objects/schema";

const tables = (sql: SqlStorage) =>
  sql
    .exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('first', 'second') ORDER BY name")
    .toArray()
    .map((r) => r.name);

describe("ensureSchema", () => {
  it("runs a schema once, and again only when its text changes", async () => {
    const stub = env.USER.get(env.USER.idFromName(`schema-${crypto.randomUUID()}`));
    await runInDurableObject(stub, (_instance, state) => {
      const sql = state.storage.sql;
      const first = "CREATE TABLE IF NOT EXISTS first (x INTEGER);";
      ensureSchema(sql, first);
      expect(tables(sql)).toEqual(["first"]);

      // The same text is not run again: a table it would create stays gone.
      sql.exec("DROP TABLE first");
      ensureSchema(sql, first);
      expect(tables(sql)).toEqual([]);

      ensureSchema(sql, `${first}\nCREATE TABLE IF NOT EXISTS second (y INTEGER);`);
      expect(tables(sql)).toEqual(["first", "second"]);
    });
  });
});
