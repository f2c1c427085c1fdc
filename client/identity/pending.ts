/** Changed identity keys: recording them for the app, and accepting them when the app says so. */
import { addressKey, userPrefix } from "../store/keys";
import { put, type RelayStore, type WriteOp } from "../store/types";
import type { StagedProtocolStore } from "../sessions/staged-store";

/**
 * Write ops that record every identity `staged` refused, and the addresses they belong to.
 * @example
 * const { ops, addresses } = untrustedOps(staged, Date.now());
 * await store.write(ops);
 * for (const a of addresses) events.emit("identityChanged", a);
 */
export function untrustedOps(staged: StagedProtocolStore, now: number): { ops: WriteOp[]; addresses: { userId: string; deviceId: number }[] } {
  const ops: WriteOp[] = [];
  const addresses: { userId: string; deviceId: number }[] = [];
  for (const { address, key } of staged.untrusted) {
    ops.push(put("pendingIdentities", addressKey(address.userId, address.deviceId), { key, seenAt: now }));
    addresses.push({ userId: address.userId, deviceId: address.deviceId });
  }
  return { ops, addresses };
}

/**
 * Write ops that accept the pending identity keys of `userId` (one device, or all of them).
 * Returns no ops when nothing was pending.
 * @example
 * await store.write(await trustOps(store, bobId, undefined, Date.now()));
 */
export async function trustOps(store: RelayStore, userId: string, deviceId: number | undefined, now: number): Promise<WriteOp[]> {
  const pending = await store.list("pendingIdentities", { prefix: userPrefix(userId) });
  const ops: WriteOp[] = [];
  for (const { key, value } of pending) {
    if (deviceId !== undefined && key !== addressKey(userId, deviceId)) continue;
    ops.push(put("identities", key, { key: value.key, trustedAt: now }), put("pendingIdentities", key, undefined));
  }
  return ops;
}

/**
 * Whether a changed identity of this device waits for the app.
 * @example
 * if (await isPending(store, from, fromDevice)) hold(envelope);
 */
export async function isPending(store: RelayStore, userId: string, deviceId: number): Promise<boolean> {
  return (await store.get("pendingIdentities", addressKey(userId, deviceId))) !== undefined;
}
