/** A small typed event emitter: the SDK's `relay.on("message", …)` surface. */

/** Calls a listener; returns nothing. */
export type Listener<T> = (payload: T) => void;

/**
 * Typed events: `on` returns an unsubscribe function; a throwing listener is reported to `error` listeners
 * (or rethrown asynchronously when there are none) and never breaks the SDK.
 * @example
 * const events = new Emitter<{ ping: number }>();
 * const off = events.on("ping", (n) => console.log(n));
 * events.emit("ping", 1);
 * off();
 */
export class Emitter<Events extends { error: unknown }> {
  private readonly listeners = new Map<keyof Events, Set<Listener<never>>>();

  /**
   * Subscribes to `event`; returns a function that unsubscribes.
   * @example
   * const off = relay.on("message", (m) => render(m));
   */
  on<K extends keyof Events>(event: K, listener: Listener<Events[K]>): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener as Listener<never>);
    return () => this.off(event, listener);
  }

  /**
   * Subscribes for one call only.
   * @example
   * relay.once("connection", (s) => console.log(s.state));
   */
  once<K extends keyof Events>(event: K, listener: Listener<Events[K]>): () => void {
    const off = this.on(event, (payload) => {
      off();
      listener(payload);
    });
    return off;
  }

  /**
   * Unsubscribes `listener`.
   * @example
   * relay.off("message", render);
   */
  off<K extends keyof Events>(event: K, listener: Listener<Events[K]>): void {
    this.listeners.get(event)?.delete(listener as Listener<never>);
  }

  /**
   * Calls every listener of `event` with `payload`.
   * @example
   * events.emit("message", record);
   */
  emit<K extends keyof Events>(event: K, payload: Events[K]): void {
    for (const listener of [...(this.listeners.get(event) ?? [])]) {
      try {
        (listener as Listener<Events[K]>)(payload);
      } catch (error) {
        if (event !== "error" && this.listeners.get("error")?.size) this.emit("error", error as Events["error"]);
        else queueMicrotask(() => {
          throw error;
        });
      }
    }
  }
}
