/** One-time prekey pools per device, claimed atomically: no two callers ever get the same key. */
import type { PreKey, PreKeyCounts, SignedPreKey } from "../src/protocol/http";

const EC = 0;
const KYBER = 1;

export interface ClaimedPreKeys {
  preKey?: PreKey;
  kyberPreKey?: SignedPreKey;
}

export class PreKeyPool {
  constructor(private readonly sql: SqlStorage) {}

  /** Replaces the device's EC pool with `preKeys` and/or its Kyber pool with `kyberPreKeys` (when given). */
  replace(deviceId: number, preKeys?: readonly PreKey[], kyberPreKeys?: readonly SignedPreKey[]): void {
    if (preKeys) {
      this.sql.exec("DELETE FROM prekeys WHERE device_id = ? AND kind = ?", deviceId, EC);
      for (const key of preKeys) {
        this.sql.exec(
          "INSERT OR REPLACE INTO prekeys (device_id, kind, key_id, public_key, signature) VALUES (?, ?, ?, ?, NULL)",
          deviceId,
          EC,
          key.keyId,
          key.publicKey,
        );
      }
    }
    if (kyberPreKeys) {
      this.sql.exec("DELETE FROM prekeys WHERE device_id = ? AND kind = ?", deviceId, KYBER);
      for (const key of kyberPreKeys) {
        this.sql.exec(
          "INSERT OR REPLACE INTO prekeys (device_id, kind, key_id, public_key, signature) VALUES (?, ?, ?, ?, ?)",
          deviceId,
          KYBER,
          key.keyId,
          key.publicKey,
          key.signature,
        );
      }
    }
  }

  removeDevice(deviceId: number): void {
    this.sql.exec("DELETE FROM prekeys WHERE device_id = ?", deviceId);
  }

  /** Takes one key of each kind for the device (the lowest id), if any is left. */
  claim(deviceId: number): ClaimedPreKeys {
    const ec = this.take(deviceId, EC);
    const kyber = this.take(deviceId, KYBER);
    return {
      ...(ec && { preKey: { keyId: ec.key_id, publicKey: ec.public_key } }),
      ...(kyber && { kyberPreKey: { keyId: kyber.key_id, publicKey: kyber.public_key, signature: kyber.signature ?? "" } }),
    };
  }

  counts(deviceId: number): PreKeyCounts {
    const counts: PreKeyCounts = { preKeys: 0, kyberPreKeys: 0 };
    for (const row of this.sql.exec<{ kind: number; n: number }>(
      "SELECT kind, COUNT(*) AS n FROM prekeys WHERE device_id = ? GROUP BY kind",
      deviceId,
    )) {
      if (row.kind === EC) counts.preKeys = row.n;
      else counts.kyberPreKeys = row.n;
    }
    return counts;
  }

  private take(deviceId: number, kind: number) {
    return this.sql
      .exec<{ key_id: number; public_key: string; signature: string | null }>(
        `DELETE FROM prekeys WHERE device_id = ?1 AND kind = ?2 AND key_id =
           (SELECT key_id FROM prekeys WHERE device_id = ?1 AND kind = ?2 ORDER BY key_id LIMIT 1)
         RETURNING key_id, public_key, signature`,
        deviceId,
        kind,
      )
      .toArray()[0];
  }
}
