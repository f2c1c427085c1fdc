/** What the SDK's modules share for one signed-in device (internal: apps use `Relay`). */
import type { RelayApi } from "./http/api";
import type { Emitter } from "./events";
import type { Tuning } from "./limits";
import type { LocalIdentity } from "./sessions/staged-store";
import type { RelayStore } from "./store/types";
import type { Connection } from "./transport/connection";
import type { RelayEvents } from "./relay-events";
import type { SerialQueue } from "./util/serial";

export interface Core {
  store: RelayStore;
  local: LocalIdentity;
  userId: string;
  deviceId: number;
  api: RelayApi;
  connection: Connection;
  events: Emitter<RelayEvents>;
  tuning: Tuning;
  /** Every operation on sessions and keys runs here, one at a time (the crypto layer's state is read-modify-write). */
  lane: SerialQueue;
  now(): number;
}
