import type { DeviceMismatch } from "../src/protocol/errors";

export interface RegisteredDevice {
  registrationId: number;
}

/**
 * Compares the devices a send addresses with the user's current devices, as Signal-Server does:
 * every current device (but `senderDevice`) must be addressed once, with its current registration id.
 * Returns null when the list is exact.
 */
export function deviceMismatch(
  userId: string,
  current: ReadonlyMap<number, RegisteredDevice>,
  addressed: readonly { device: number; registrationId: number }[],
  senderDevice?: number,
): DeviceMismatch | null {
  const missing: number[] = [];
  const extra: number[] = [];
  const stale: number[] = [];
  const seen = new Set<number>();
  for (const { device, registrationId } of addressed) {
    seen.add(device);
    const known = current.get(device);
    if (!known || device === senderDevice) extra.push(device);
    else if (known.registrationId !== registrationId) stale.push(device);
  }
  for (const device of current.keys()) {
    if (device !== senderDevice && !seen.has(device)) missing.push(device);
  }
  if (missing.length + extra.length + stale.length === 0) return null;
  const byNumber = (a: number, b: number) => a - b;
  return { userId, missing: missing.sort(byNumber), extra: extra.sort(byNumber), stale: stale.sort(byNumber) };
}
