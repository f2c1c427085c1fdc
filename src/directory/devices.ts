/** The D1 directory of devices and their long-lived public keys. */
import type { DeviceInfo, DeviceKeys } from "../protocol/http";
import { LIMITS } from "../protocol/limits";

export interface DeviceRow {
  device_id: number;
  registration_id: number;
  name: string | null;
  identity_key: string;
  signed_prekey_id: number;
  signed_prekey: string;
  signed_prekey_sig: string;
  kyber_prekey_id: number;
  kyber_prekey: string;
  kyber_prekey_sig: string;
  token_family: string;
  created_at: number;
}

const COLUMNS =
  "user_id, device_id, registration_id, name, identity_key, signed_prekey_id, signed_prekey, signed_prekey_sig, kyber_prekey_id, kyber_prekey, kyber_prekey_sig, token_family, created_at";

/** The values after user_id and device_id, in COLUMNS order. */
function keyValues(keys: DeviceKeys, name: string | undefined, family: string, now: number) {
  return [
    keys.registrationId,
    name ?? null,
    keys.identityKey,
    keys.signedPreKey.keyId,
    keys.signedPreKey.publicKey,
    keys.signedPreKey.signature,
    keys.kyberLastResortPreKey.keyId,
    keys.kyberLastResortPreKey.publicKey,
    keys.kyberLastResortPreKey.signature,
    family,
    now,
  ];
}

/** A statement inserting a device with a fixed id (used for the primary device, id 1). */
export function insertDevice(db: D1Database, userId: string, deviceId: number, keys: DeviceKeys, name: string | undefined, family: string, now: number) {
  return db
    .prepare(`INSERT INTO devices (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
    .bind(userId, deviceId, ...keyValues(keys, name, family, now));
}

/**
 * Atomically adds a device to the user holding the link code `codeHash` (if it is unexpired), with the
 * lowest free device id, unless the user already has `LIMITS.maxDevicesPerUser` devices; then consumes the
 * code. Returns the new device id, or null when nothing was added.
 */
export async function insertLinkedDevice(db: D1Database, codeHash: string, keys: DeviceKeys, name: string | undefined, family: string, now: number) {
  const [inserted] = await db.batch<{ user_id: string; device_id: number }>([
    db
      .prepare(
        `INSERT INTO devices (${COLUMNS})
         SELECT lc.user_id,
                (SELECT MIN(d.device_id + 1) FROM (SELECT 0 AS device_id UNION ALL SELECT device_id FROM devices WHERE user_id = lc.user_id) d
                  WHERE d.device_id + 1 NOT IN (SELECT device_id FROM devices WHERE user_id = lc.user_id)),
                ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?
         FROM link_codes lc
         WHERE lc.code_hash = ? AND lc.expires_at > ?
           AND (SELECT COUNT(*) FROM devices WHERE user_id = lc.user_id) < ?
         RETURNING user_id, device_id`,
      )
      .bind(...keyValues(keys, name, family, now), codeHash, now, LIMITS.maxDevicesPerUser),
    db.prepare("DELETE FROM link_codes WHERE code_hash = ? AND changes() > 0").bind(codeHash),
  ]);
  return inserted?.results[0] ?? null;
}

export async function listDevices(db: D1Database, userId: string): Promise<DeviceRow[]> {
  const { results } = await db
    .prepare(`SELECT ${COLUMNS} FROM devices WHERE user_id = ? ORDER BY device_id`)
    .bind(userId)
    .all<DeviceRow>();
  return results;
}

export function deviceInfo(row: DeviceRow): DeviceInfo {
  return { deviceId: row.device_id, registrationId: row.registration_id, name: row.name, createdAt: row.created_at };
}
