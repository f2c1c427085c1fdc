/**
 * ejabberd as a peer (XMPP, the lineage WhatsApp came from): the Debian package, installed when missing,
 * run with its own configuration in a fresh directory: c2s on 127.0.0.1 (plain TCP, no shaper), users and
 * offline messages in SQLite (`sql_type: sqlite`, the `erlang-p1-sqlite3` package; mod_offline's spool
 * table), no epmd (ERL_DIST_PORT), in its own process group as the `ejabberd` system user.
 * Users are written straight into the `users` table (plain passwords) before the server starts.
 * Group chat (workload 4) is MUC (XEP-0045) on `conference.localhost`: temporary rooms of up to MUC_MAX_USERS
 * occupants, no history replayed on join, occupants' presence not broadcast (as in a large WhatsApp group).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createConnection } from "node:net";
import { join } from "node:path";
import { pinned, sleep, spawnGroup } from "./proc.mjs";

const CTL = "/usr/sbin/ejabberdctl";
const SCHEMA = "/usr/share/ejabberd/sql/lite.sql";
const SQLITE_DRIVER = "/usr/lib/erlang/lib";
/** The MUC service's host and its largest room (ejabberd's default is 200 occupants). */
export const MUC_HOST = "conference.localhost";
const MUC_MAX_USERS = 2_000;

function hasSqliteDriver() {
  try {
    return execFileSync("ls", [SQLITE_DRIVER], { encoding: "utf8" }).split("\n").some((d) => d.startsWith("p1_sqlite3"));
  } catch {
    return false;
  }
}

/**
 * Makes sure ejabberd (and its SQLite driver) is installed: `apt-get update` then `apt-get install -y`
 * when missing and allowed. Returns { ok, version, note }.
 */
export function ensureEjabberd({ install, log }) {
  const present = () => existsSync(CTL) && existsSync(SCHEMA) && hasSqliteDriver();
  if (!present()) {
    if (!install) return { ok: false, note: "ejabberd (or erlang-p1-sqlite3) is not installed and this mode does not install it (the full run does)" };
    if (process.getuid?.() !== 0) return { ok: false, note: "ejabberd is not installed and installing it needs root" };
    log("ejabberd: not installed; apt-get update && apt-get install -y ejabberd erlang-p1-sqlite3");
    const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
    const update = spawnSync("apt-get", ["update", "-qq"], { env, encoding: "utf8", timeout: 180_000 });
    if (update.status !== 0) return { ok: false, note: `apt-get update failed: ${(update.stderr || update.stdout || "").trim().split("\n").pop()}` };
    const inst = spawnSync("apt-get", ["install", "-y", "-qq", "ejabberd", "erlang-p1-sqlite3"], { env, encoding: "utf8", timeout: 300_000 });
    if (inst.status !== 0 || !present()) return { ok: false, note: `apt-get install ejabberd failed: ${(inst.stderr || inst.stdout || "").trim().split("\n").pop()}` };
  }
  let version = "unknown";
  try {
    version = /Version: (\S+)/.exec(execFileSync("dpkg", ["-s", "ejabberd"], { encoding: "utf8" }))?.[1] ?? version;
  } catch {
    // not from a Debian package
  }
  return { ok: true, version };
}

function portOpen(port) {
  return new Promise((resolve) => {
    const s = createConnection({ port, host: "127.0.0.1" });
    s.once("connect", () => (s.destroy(), resolve(true)));
    s.once("error", () => resolve(false));
  });
}

/** Starts ejabberd on `port` with state in `dir` and `users` ({user, password}) registered. */
export async function startEjabberd({ dir, port, distPort, users, pinning, cores }) {
  const { DatabaseSync } = await import("node:sqlite");
  for (const sub of ["spool", "logs", "home"]) mkdirSync(join(dir, sub), { recursive: true });
  const dbPath = join(dir, "ejabberd.db");
  const db = new DatabaseSync(dbPath);
  db.exec(readFileSync(SCHEMA, "utf8"));
  const insert = db.prepare("INSERT INTO users (username, password) VALUES (?, ?)");
  db.exec("BEGIN");
  for (const u of users) insert.run(u.user, u.password);
  db.exec("COMMIT");
  db.close();
  const config = `
loglevel: warning
hosts: ["localhost"]
listen:
  -
    port: ${port}
    ip: "127.0.0.1"
    module: ejabberd_c2s
    max_stanza_size: 262144
    shaper: none
    access: c2s
auth_method: sql
auth_password_format: plain
# PLAIN only: with plain-stored passwords SCRAM would run PBKDF2 (4,096 rounds) in the server on every login.
disable_sasl_mechanisms: ["digest-md5", "x-oauth2", "scram-sha-1", "scram-sha-256", "scram-sha-512"]
sql_type: sqlite
sql_database: "${dbPath}"
default_db: sql
acl:
  local:
    user_regexp: ""
access_rules:
  local:
    allow: local
  c2s:
    allow: all
shaper_rules:
  max_user_sessions: 10
  max_user_offline_messages:
    1000000: all
  c2s_shaper: none
modules:
  mod_disco: {}
  mod_offline:
    access_max_user_messages: max_user_offline_messages
  mod_ping: {}
  mod_muc:
    host: ${MUC_HOST}
    access_create: c2s
    max_users: ${MUC_MAX_USERS}
    history_size: 0
    # Joins are not announced to the other occupants (1,000 joins would be 1,000,000 presence stanzas).
    max_users_presence: 0
    default_room_options:
      max_users: ${MUC_MAX_USERS}
      persistent: false
`;
  writeFileSync(join(dir, "ejabberd.yml"), config);
  writeFileSync(join(dir, "ejabberdctl.cfg"), "");
  const uid = Number(execFileSync("id", ["-u", "ejabberd"], { encoding: "utf8" }).trim());
  const gid = Number(execFileSync("id", ["-g", "ejabberd"], { encoding: "utf8" }).trim());
  for (const p of ["", "spool", "logs", "home", "ejabberd.db", "ejabberd.yml", "ejabberdctl.cfg"]) chownSync(join(dir, p), uid, gid);
  const command = pinned(pinning, cores, [
    "setpriv", "--reuid=ejabberd", "--regid=ejabberd", "--init-groups",
    "env", `HOME=${join(dir, "home")}`, `ERL_DIST_PORT=${distPort}`,
    CTL, "--config", join(dir, "ejabberd.yml"), "--ctl-config", join(dir, "ejabberdctl.cfg"),
    "--spool", join(dir, "spool"), "--logs", join(dir, "logs"), "--node", "relaybench@localhost", "foreground",
  ]);
  const server = spawnGroup(command, { cwd: dir });
  const deadline = Date.now() + 60_000;
  while (!(await portOpen(port))) {
    if (server.exited()) throw new Error(`ejabberd exited before listening:\n${server.log.slice(-20).join("\n")}`);
    if (Date.now() > deadline) {
      await server.stop();
      throw new Error(`ejabberd did not listen on ${port} within 60 s:\n${server.log.slice(-20).join("\n")}`);
    }
    await sleep(200);
  }
  return { ...server, dbPath };
}
