/**
 * Protocol addresses (a user and one of their devices) and the 36-byte `addresses` field libsignal
 * binds into a SignalMessage: sender service id (17) ‖ sender device (1) ‖ recipient service id (17) ‖
 * recipient device (1). Service ids follow libsignal's `ServiceId::parse_from_service_id_string`:
 * a hyphenated UUID (any case) is an ACI (kind byte 0x00), `PNI:` + UUID a PNI (0x01); anything else
 * is not a service id, and then no `addresses` field is written (nor can one be checked).
 */
import { hexToBytes } from "@noble/hashes/utils.js";

/** One device of one user: where a session leads. */
export interface ProtocolAddress {
  /** The user's id (Relay: a UUID, which libsignal reads as an ACI service id). */
  userId: string;
  /** The device id, 1..127 as libsignal allows. */
  deviceId: number;
}

/** Largest device id libsignal accepts (`DeviceId` is 1..=127). */
export const MAX_DEVICE_ID = 127;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Throws `TypeError` unless `address` has a non-empty user id and an integer device id in 1..127. */
export function assertAddress(address: ProtocolAddress): void {
  if (!address || typeof address.userId !== "string" || address.userId.length === 0) throw new TypeError("address.userId must be a non-empty string");
  if (!Number.isInteger(address.deviceId) || address.deviceId < 1 || address.deviceId > MAX_DEVICE_ID) {
    throw new TypeError(`address.deviceId must be an integer in 1..${MAX_DEVICE_ID}, got ${address.deviceId}`);
  }
}

/** A stable string key for maps: `userId.deviceId` (libsignal's `ProtocolAddress.toString()` form). */
export function addressKey(address: ProtocolAddress): string {
  return `${address.userId}.${address.deviceId}`;
}

/** The 17-byte fixed-width binary service id of a user id, or undefined when it is not a service id. */
export function serviceIdFixedWidth(userId: string): Uint8Array | undefined {
  const pni = userId.startsWith("PNI:");
  const uuid = pni ? userId.slice(4) : userId;
  if (!UUID.test(uuid)) return undefined;
  const out = new Uint8Array(17);
  out[0] = pni ? 0x01 : 0x00;
  out.set(hexToBytes(uuid.replace(/-/g, "")), 1);
  return out;
}

/** The `addresses` field for a message from `sender` to `recipient`, or undefined when either user id is not a service id. */
export function encodeAddresses(sender: ProtocolAddress, recipient: ProtocolAddress): Uint8Array | undefined {
  const s = serviceIdFixedWidth(sender.userId);
  const r = serviceIdFixedWidth(recipient.userId);
  if (!s || !r) return undefined;
  const out = new Uint8Array(36);
  out.set(s, 0);
  out[17] = sender.deviceId;
  out.set(r, 18);
  out[35] = recipient.deviceId;
  return out;
}

/** Whether two user ids name the same account, as libsignal decides it (both must be service ids). */
export function sameServiceId(a: string, b: string): boolean {
  const x = serviceIdFixedWidth(a);
  const y = serviceIdFixedWidth(b);
  return x !== undefined && y !== undefined && x.every((v, i) => v === y[i]);
}
