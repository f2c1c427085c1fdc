/**
 * Relay as a bench target, two ways:
 *  - "workerd": wrangler's programmatic API (bench/lib/workerd-server.mjs) with load sent straight to the
 *    user worker's own URL (no dev proxy), as ../shared/RUNTIME-NOTES.md describes;
 *  - "wrangler-dev": the real `npm start` (wrangler dev), load sent through its dev proxy.
 * Both use the same token-signing key and may share one state directory, so users registered against one
 * are valid on the other. Users are registered through the public API, with a local stand-in for Twilio.
 */
/* global URLSearchParams, fetch, AbortSignal, Buffer */
import { generateKeyPairSync } from "node:crypto";
import { existsSync } from "node:fs";
import { createServer } from "node:http";
import { createServer as createNetServer } from "node:net";
import { join } from "node:path";
import { groupProcesses, listenerPid, pinned, pool, sleep, spawnGroup, withTimeout } from "./proc.mjs";

/** Rate limits replaced through the server's `RATE_LIMIT_OVERRIDES` var (every bench user comes from one IP). */
export const RATE_LIMIT_OVERRIDES = {
  codePerIp: { max: 1_000_000, windowMs: 3_600_000 },
  verifyPerIp: { max: 1_000_000, windowMs: 3_600_000 },
};

/** One token-signing key per bench run (never written to disk). */
export const TOKEN_SIGNING_KEY = generateKeyPairSync("ed25519").privateKey.export({ format: "pem", type: "pkcs8" }).toString();

/** Stand-in for Twilio's Messages API: remembers the latest code per phone. */
export async function startSmsCapture() {
  const codes = new Map();
  let count = 0;
  const server = createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (chunk) => (body += chunk));
    req.on("end", () => {
      const form = new URLSearchParams(body);
      const code = /(\d{6})/.exec(form.get("Body") ?? "")?.[1];
      if (code) codes.set(form.get("To"), code);
      count++;
      res.writeHead(201, { "content-type": "application/json" }).end(JSON.stringify({ sid: `SM${count}` }));
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${server.address().port}`, codes, close: () => new Promise((r) => server.close(r)) };
}

export async function freePort() {
  const server = createNetServer();
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Starts Relay on workerd via `unstable_startWorker`; traffic goes to the user worker URL (proxy skipped). */
export async function startRelayDirect({ root, persist, sms, pinning, cores, env }) {
  const plain = (value) => ({ type: "plain_text", value });
  const bindings = {
    TOKEN_SIGNING_KEY: { type: "secret_text", value: TOKEN_SIGNING_KEY },
    SMS_PROVIDER: plain("twilio"),
    TWILIO_API_BASE: plain(sms.url),
    TWILIO_ACCOUNT_SID: plain("ACbench"),
    TWILIO_AUTH_TOKEN: plain("bench"),
    TWILIO_FROM: plain("+15005550006"),
    RATE_LIMIT_OVERRIDES: plain(JSON.stringify(RATE_LIMIT_OVERRIDES)),
  };
  return startWorkerd({ root, config: join(root, "wrangler.toml"), persist, migrate: true, bindings, pinning, cores, env });
}

/** Any Worker on workerd under wrangler's API, in its own process group; resolves with its URLs and pids. */
export async function startWorkerd({ root, config, persist, migrate, bindings, pinning, cores, env }) {
  const script = join(root, "bench", "lib", "workerd-server.mjs");
  const args = ["--config", config, "--persist", persist, "--bindings", JSON.stringify(bindings), ...(migrate ? ["--migrate"] : [])];
  const server = spawnGroup(pinned(pinning, cores, [process.execPath, "--disable-warning=ExperimentalWarning", script, ...args]), { cwd: root, env, ipc: true });
  const ready = await withTimeout(
    new Promise((resolve, reject) => {
      server.child.on("message", (m) => {
        if (m?.type === "ready") resolve(m);
        if (m?.type === "error") reject(new Error(m.error));
      });
      server.child.once("exit", (code) => reject(new Error(`server exited (${code}) before ready:\n${server.log.slice(-30).join("\n")}`)));
    }),
    120_000,
    "workerd start",
  ).catch(async (error) => {
    await server.stop();
    throw error;
  });
  const userPort = Number(new URL(ready.userWorkerUrl).port);
  const workerd = () => groupProcesses(server.pgid).filter((p) => p.comm === "workerd");
  let userPid;
  return {
    baseUrl: ready.userWorkerUrl,
    proxyUrl: ready.proxyUrl,
    pgid: server.pgid,
    log: server.log,
    /** The workerd process that serves the user worker (the one holding its listening socket). */
    servingPids: () => {
      if (userPid && !existsSync(`/proc/${userPid}`)) userPid = undefined; // it exited; wrangler may have started another
      userPid ??= listenerPid(userPort, workerd().map((p) => p.pid));
      return userPid ? [userPid] : workerd().map((p) => p.pid);
    },
    allPids: () => groupProcesses(server.pgid).map((p) => p.pid),
    processes: () => groupProcesses(server.pgid),
    stop: async () => {
      if (server.child.connected) server.child.send({ cmd: "stop" });
      for (let i = 0; i < 100 && !server.exited(); i++) await sleep(100);
      return server.stop();
    },
  };
}

/** Starts the real `npm start` (wrangler dev, behind its dev proxy) with the bench's key and state directory. */
export async function startRelayDev({ root, persist, sms, pinning, cores, env }) {
  const port = await freePort();
  const vars = {
    TOKEN_SIGNING_KEY,
    SMS_PROVIDER: "twilio",
    TWILIO_API_BASE: sms.url,
    TWILIO_ACCOUNT_SID: "ACbench",
    TWILIO_AUTH_TOKEN: "bench",
    TWILIO_FROM: "+15005550006",
    RATE_LIMIT_OVERRIDES: JSON.stringify(RATE_LIMIT_OVERRIDES),
  };
  const command = pinned(pinning, cores, [
    "npm", "start", "--", "--port", String(port), "--persist-to", persist,
    ...Object.entries(vars).flatMap(([k, v]) => ["--var", `${k}:${v}`]),
  ]);
  const server = spawnGroup(command, { cwd: root, env: { ...env, CI: "true" } });
  const baseUrl = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (server.exited()) throw new Error(`npm start exited before it was ready:\n${server.log.slice(-30).join("\n")}`);
    try {
      const res = await fetch(`${baseUrl}/v1/health`, { signal: AbortSignal.timeout(2_000) });
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await server.stop();
      throw new Error(`npm start did not answer /v1/health within 120 s:\n${server.log.slice(-30).join("\n")}`);
    }
    await sleep(250);
  }
  return {
    baseUrl,
    pgid: server.pgid,
    log: server.log,
    /** Every workerd of the group: wrangler dev's proxy and the user worker both carry the traffic. */
    servingPids: () => groupProcesses(server.pgid).filter((p) => p.comm === "workerd").map((p) => p.pid),
    allPids: () => groupProcesses(server.pgid).map((p) => p.pid),
    processes: () => groupProcesses(server.pgid),
    stop: () => server.stop(),
  };
}

/** Device keys for registration, made with libsignal (no one-time prekeys: the load needs none). */
async function newDeviceKeys() {
  const { PrivateKey, KEMKeyPair } = await import("@signalapp/libsignal-client");
  const identity = PrivateKey.generate();
  const signedPreKey = PrivateKey.generate().getPublicKey().serialize();
  const kyber = KEMKeyPair.generate().getPublicKey().serialize();
  const b64 = (bytes) => Buffer.from(bytes).toString("base64");
  return {
    registrationId: 1 + Math.floor(Math.random() * 16380),
    identityKey: b64(identity.getPublicKey().serialize()),
    /** Kept by the bench (never sent): a channel admin signs its posts with it (XEdDSA, libsignal's `sign`). */
    identityPrivate: b64(identity.serialize()),
    signedPreKey: { keyId: 1, publicKey: b64(signedPreKey), signature: b64(identity.sign(signedPreKey)) },
    kyberLastResortPreKey: { keyId: 1, publicKey: b64(kyber), signature: b64(identity.sign(kyber)) },
    preKeys: [],
    kyberPreKeys: [],
  };
}

async function post(url, body) {
  const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body), signal: AbortSignal.timeout(30_000) });
  return { status: res.status, json: await res.json().catch(() => undefined) };
}

/**
 * Registers users `from`..`from+count-1` (one device each) through the public API, stopping early at
 * `deadline` (epoch ms). Resolves with the sessions registered: { userId, token, registrationId, deviceId,
 * identityPrivate } (the identity private key stays in the bench: channel posts are signed with it).
 * 24 at a time: 16 kept the server at ~87 % of its core (2026-11-29 03:54 UTC).
 */
export async function registerUsers(baseUrl, sms, from, count, deadline, concurrency = 24) {
  const out = [];
  await pool(Array.from({ length: count }, (_, i) => from + i), concurrency, async (i) => {
    if (Date.now() > deadline) return;
    const phone = `+1415${String(5551000 + i).padStart(7, "0")}`;
    const keys = await newDeviceKeys();
    const requested = await post(`${baseUrl}/v1/registration/code`, { phone });
    if (requested.status !== 202) throw new Error(`code request for user ${i}: HTTP ${requested.status} ${JSON.stringify(requested.json)}`);
    const code = sms.codes.get(phone);
    if (!code) throw new Error(`no SMS captured for ${phone}`);
    const { identityPrivate, ...device } = keys;
    const verified = await post(`${baseUrl}/v1/registration/verify`, { phone, code, device });
    if (verified.status !== 201 && verified.status !== 200) throw new Error(`verify for user ${i}: HTTP ${verified.status} ${JSON.stringify(verified.json)}`);
    out.push({
      n: i,
      userId: verified.json.userId,
      token: verified.json.accessToken,
      registrationId: keys.registrationId,
      deviceId: verified.json.deviceId ?? 1,
      identityPrivate,
    });
  });
  return out.sort((a, b) => a.n - b.n);
}

