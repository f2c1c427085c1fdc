/**
 * What a workload wrote to disk: the bytes of a state directory (every file, SQLite's -wal and -shm
 * included) and rows counted in SQLite files, opened read-only beside the running server (WAL readers do
 * not block it). Used by workload 8 to show whether a channel post is stored once or once per subscriber.
 *
 * Durable Objects under wrangler/miniflare keep one SQLite file per object in
 * `<persist>/v3/do/<worker name>-<class name>/<object id>.sqlite`.
 */
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";

/** Total bytes of the files under `dir` (0 when it does not exist). */
export function dirBytes(dir) {
  let total = 0;
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const e of entries) {
    const path = join(dir, e.name);
    if (e.isDirectory()) total += dirBytes(path);
    else {
      try {
        total += statSync(path).size;
      } catch {
        // gone meanwhile
      }
    }
  }
  return total;
}

/** The SQLite files of one Durable Object class (`<worker>-<class>` directory) under a persist directory. */
export function durableObjectFiles(persist, className) {
  const base = join(persist, "v3", "do");
  let dirs;
  try {
    dirs = readdirSync(base).filter((d) => d.endsWith(`-${className}`));
  } catch {
    return [];
  }
  return dirs.flatMap((d) =>
    readdirSync(join(base, d))
      .filter((f) => f.endsWith(".sqlite"))
      .map((f) => join(base, d, f)),
  );
}

/**
 * Runs `query` (one row with numeric columns) in each file, read-only; returns the per-file rows of the files
 * where it succeeded (a file without the table, or locked for longer than the busy timeout, is left out).
 */
export async function queryFiles(files, query, ...params) {
  const { DatabaseSync } = await import("node:sqlite");
  const out = [];
  for (const file of files) {
    let db;
    try {
      db = new DatabaseSync(file, { readOnly: true });
      db.exec("PRAGMA busy_timeout = 2000");
      out.push({ file, ...db.prepare(query).get(...params) });
    } catch {
      // not this kind of object, or not readable now
    } finally {
      try {
        db?.close();
      } catch {
        // already closed
      }
    }
  }
  return out;
}

/** Size of every file under `dir` (path → bytes), to tell afterwards which files grew. */
export function fileSizes(dir, out = new Map()) {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) {
    const path = join(dir, e.name);
    if (e.isDirectory()) fileSizes(path, out);
    else {
      try {
        out.set(path, statSync(path).size);
      } catch {
        // gone meanwhile
      }
    }
  }
  return out;
}

/** Files that grew or appeared between two fileSizes() readings, grouped by their directory's last part. */
export function grownFiles(before, after) {
  const by = {};
  for (const [path, size] of after) {
    const delta = size - (before.get(path) ?? 0);
    if (delta <= 0) continue;
    const parts = path.split("/");
    const group = parts[parts.length - 2];
    by[group] ??= { files: 0, bytes: 0 };
    by[group].files++;
    by[group].bytes += delta;
  }
  return by;
}
