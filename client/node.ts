/**
 * Relay's client SDK for Node: everything from `client/index.ts`, plus {@link SqliteStore} (`node:sqlite`).
 *
 * @example
 * import { Relay, SqliteStore } from "relay/client/node";
 * const relay = await Relay.connect({ store: new SqliteStore("./relay.db") });
 */
export * from "./index";
export { SqliteStore } from "./store/sqlite";
