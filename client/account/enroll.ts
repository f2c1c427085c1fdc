/**
 * Enrolling this device: generate its keys, register them (a new account by SMS code, or a linked device
 * by link code), and store the account with every private key in one atomic write.
 */
import type { Session } from "../../src/protocol/http";
import { generateDeviceKeys } from "../crypto/index";
import { deviceKeyOps } from "../keys/local-keys";
import { META } from "../store/keys";
import { put, type AccountRecord, type RelayStore } from "../store/types";

/**
 * Generates a device's keys (with `batch` one-time prekeys of each kind), lets `register` send the public
 * half to the server, then stores account and keys together. Refuses a store that already holds an account.
 * @example
 * const account = await enrollDevice(store, url, 100, (device) => verifyRegistration(api, { phone, code, device }));
 */
export async function enrollDevice(
  store: RelayStore,
  url: string,
  batch: number,
  register: (device: ReturnType<typeof generateDeviceKeys>["body"]) => Promise<Session>,
  phone?: string,
): Promise<AccountRecord> {
  if (await store.get("meta", META.account)) {
    throw new Error("this store already holds a Relay account: connect with it, or log out first");
  }
  const { keys, body } = generateDeviceKeys({ preKeys: batch, kyberPreKeys: batch });
  const session = await register(body);
  const account: AccountRecord = { userId: session.userId, deviceId: session.deviceId, url, session, ...(phone !== undefined && { phone }) };
  await store.write([...deviceKeyOps(keys, Date.now()), put("meta", META.account, account)]);
  return account;
}
