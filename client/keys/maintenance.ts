/**
 * Keeps this device reachable: tops up the one-time prekey pools on the server when they run low, and
 * rotates the signed EC prekey and the last-resort Kyber prekey on a schedule. Superseded keys stay in the
 * store for {@link CLIENT_DEFAULTS.oldPreKeyRetentionMs} (a sender may still use a bundle it fetched earlier),
 * the immediately previous signed and last-resort keys always; then they are deleted.
 */
import { toBase64 } from "../../src/protocol/base64";
import type { UploadKeysBody } from "../../src/protocol/http";
import { generateKyberPreKey, generateKyberPreKeys, generatePreKeys, generateSignedPreKey } from "../crypto/index";
import type { Core } from "../core";
import { META } from "../store/keys";
import { put, type KeyStateRecord, type WriteOp } from "../store/types";
import { keyIdRun } from "./ids";
import { kyberPreKeyOps, preKeyId, preKeyOps, signedPreKeyOp } from "./local-keys";
import type { CLIENT_DEFAULTS } from "../limits";

/** What one maintenance pass did. */
export interface KeyMaintenance {
  /** One-time EC and Kyber prekeys uploaded (0 when the pool was full enough). */
  preKeys: number;
  kyberPreKeys: number;
  /** Whether the signed and last-resort prekeys were rotated. */
  rotated: boolean;
  /** Superseded private keys deleted from the store. */
  pruned: number;
}

/**
 * One pass: counts the server's pools (`GET /v1/keys`), generates and stores what is needed, uploads it
 * (`PUT /v1/keys`), and prunes old keys. `rotate: true` rotates regardless of the schedule.
 * @example
 * const report = await maintainKeys(core); // { preKeys: 100, kyberPreKeys: 0, rotated: false, pruned: 0 }
 */
export async function maintainKeys(core: Core, options: { rotate?: boolean } = {}): Promise<KeyMaintenance> {
  const { tuning } = core;
  const now = core.now();
  const counts = await core.api.keyCounts();
  const state = (await core.store.get("meta", META.keyState)) as KeyStateRecord;
  const identity = core.local.identity;
  const upload: UploadKeysBody = {};
  const ops: WriteOp[] = [];
  const next: KeyStateRecord = { ...state };
  const report: KeyMaintenance = { preKeys: 0, kyberPreKeys: 0, rotated: false, pruned: 0 };
  const signed = (k: { keyId: number; keyPair: { publicKey: Uint8Array }; signature: Uint8Array }) => ({
    keyId: k.keyId,
    publicKey: toBase64(k.keyPair.publicKey),
    signature: toBase64(k.signature),
  });

  if (counts.preKeys < tuning.preKeyMinimum) {
    const keys = generatePreKeys(keyIdRun(state.nextPreKeyId, tuning.preKeyBatch), tuning.preKeyBatch);
    next.nextPreKeyId = keys[keys.length - 1]!.keyId + 1;
    ops.push(...preKeyOps(keys, now));
    upload.preKeys = keys.map((k) => ({ keyId: k.keyId, publicKey: toBase64(k.keyPair.publicKey) }));
    report.preKeys = keys.length;
  }
  let kyberNext = state.nextKyberPreKeyId;
  if (counts.kyberPreKeys < tuning.preKeyMinimum) {
    const keys = generateKyberPreKeys(identity, keyIdRun(kyberNext, tuning.preKeyBatch), tuning.preKeyBatch);
    kyberNext = keys[keys.length - 1]!.keyId + 1;
    ops.push(...kyberPreKeyOps(keys, false, now));
    upload.kyberPreKeys = keys.map(signed);
    report.kyberPreKeys = keys.length;
  }
  if (options.rotate || now - state.rotatedAt >= tuning.signedPreKeyRotationMs) {
    const signedPreKey = generateSignedPreKey(identity, keyIdRun(state.nextSignedPreKeyId, 1));
    const lastResort = generateKyberPreKey(identity, keyIdRun(kyberNext, 1));
    kyberNext = lastResort.keyId + 1;
    ops.push(signedPreKeyOp(signedPreKey, now), ...kyberPreKeyOps([lastResort], true, now));
    Object.assign(next, { nextSignedPreKeyId: signedPreKey.keyId + 1, signedPreKeyId: signedPreKey.keyId, kyberLastResortId: lastResort.keyId, rotatedAt: now });
    upload.signedPreKey = signed(signedPreKey);
    upload.kyberLastResortPreKey = signed(lastResort);
    report.rotated = true;
  }
  next.nextKyberPreKeyId = kyberNext;

  await core.lane.run(async () => {
    const supersede = await supersededOps(core, state, next, upload, now, tuning);
    report.pruned = supersede.pruned;
    await core.store.write([...supersede.ops, ...ops, put("meta", META.keyState, next)]);
  });
  if (Object.keys(upload).length > 0) await core.api.uploadKeys(upload);
  return report;
}

/** Marks keys an upload replaces and deletes those superseded longer than the retention allows. */
async function supersededOps(
  core: Core,
  before: KeyStateRecord,
  after: KeyStateRecord,
  upload: UploadKeysBody,
  now: number,
  tuning: { [K in keyof typeof CLIENT_DEFAULTS]: number },
): Promise<{ ops: WriteOp[]; pruned: number }> {
  const ops: WriteOp[] = [];
  let pruned = 0;
  const expired = (replacedAt: number | undefined) => replacedAt !== undefined && now - replacedAt > tuning.oldPreKeyRetentionMs;
  for (const { key, value } of await core.store.list("preKeys")) {
    if (expired(value.replacedAt)) {
      ops.push(put("preKeys", key, undefined));
      pruned++;
    } else if (upload.preKeys && value.replacedAt === undefined) ops.push(put("preKeys", key, { ...value, replacedAt: now }));
  }
  const keepKyber = new Set([preKeyId(after.kyberLastResortId), preKeyId(before.kyberLastResortId)]);
  for (const { key, value } of await core.store.list("kyberPreKeys")) {
    if (keepKyber.has(key)) {
      if (value.lastResort && key === preKeyId(before.kyberLastResortId) && before.kyberLastResortId !== after.kyberLastResortId) {
        ops.push(put("kyberPreKeys", key, { ...value, replacedAt: now }));
      }
      continue;
    }
    if (expired(value.replacedAt)) {
      ops.push(put("kyberPreKeys", key, undefined));
      pruned++;
    } else if (value.replacedAt === undefined && (value.lastResort || upload.kyberPreKeys)) {
      ops.push(put("kyberPreKeys", key, { ...value, replacedAt: now }));
    }
  }
  const keepSigned = new Set([preKeyId(after.signedPreKeyId), preKeyId(before.signedPreKeyId)]);
  for (const { key, value } of await core.store.list("signedPreKeys")) {
    if (keepSigned.has(key)) {
      if (key === preKeyId(before.signedPreKeyId) && before.signedPreKeyId !== after.signedPreKeyId) ops.push(put("signedPreKeys", key, { ...value, replacedAt: now }));
      continue;
    }
    if (expired(value.replacedAt ?? value.createdAt)) {
      ops.push(put("signedPreKeys", key, undefined));
      pruned++;
    }
  }
  return { ops, pruned };
}
