/**
 * Applies an object's schema once per schema text: a woken object reads one row instead of running every
 * `CREATE … IF NOT EXISTS` again, which showed when one group notice woke a thousand members' objects.
 */
export function ensureSchema(sql: SqlStorage, schema: string): void {
  const version = fingerprintOf(schema);
  if (appliedVersion(sql) === version) return;
  sql.exec(schema);
  sql.exec("CREATE TABLE IF NOT EXISTS schema_version (version TEXT NOT NULL)");
  sql.exec("DELETE FROM schema_version");
  sql.exec("INSERT INTO schema_version (version) VALUES (?)", version);
}

function appliedVersion(sql: SqlStorage): string | null {
  try {
    return sql.exec<{ version: string }>("SELECT version FROM schema_version").toArray()[0]?.version ?? null;
  } catch {
    return null; // a new object: no table yet
  }
}

/** Schema texts are module constants: each is hashed once per isolate, not on every object's wake-up. */
const fingerprints = new Map<string, string>();

function fingerprintOf(schema: string): string {
  let version = fingerprints.get(schema);
  if (version === undefined) fingerprints.set(schema, (version = fingerprint(schema)));
  return version;
}

/** FNV-1a over the schema text: any edit to it applies it again. */
function fingerprint(text: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return `${text.length}:${(hash >>> 0).toString(16)}`;
}
