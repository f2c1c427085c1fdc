/**
 * Per-connection identity and flow-control state, kept in the socket's attachment so that an object
 * woken from hibernation knows every socket without a lookup, and cached in memory while awake.
 */
export interface SocketState {
  device: number;
  /** Highest sequence pushed on this socket. */
  sent: number;
  /** Highest sequence the device acknowledged. */
  acked: number;
}

export const deviceTag = (device: number) => `device:${device}`;

const cache = new WeakMap<WebSocket, SocketState>();

export function socketState(ws: WebSocket): SocketState | undefined {
  let state = cache.get(ws);
  if (!state) {
    state = ws.deserializeAttachment() as SocketState | undefined;
    if (state) cache.set(ws, state);
  }
  return state;
}

export function saveSocketState(ws: WebSocket, state: SocketState): void {
  cache.set(ws, state);
  ws.serializeAttachment(state);
}
