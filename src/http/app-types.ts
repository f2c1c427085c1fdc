import type { DeviceClaims } from "../auth/tokens";

/** The Hono environment of every router: the Worker's bindings and the authenticated device. */
export interface AppEnv {
  Bindings: Env;
  Variables: { device: DeviceClaims };
}
