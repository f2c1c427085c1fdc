/**
 * Stubs of other Durable Objects kept for reuse: a call through a fresh stub costs a new channel to the object,
 * which showed up as a large share of a group fan-out's CPU. A stub whose call failed is dropped, since it may
 * be broken; the oldest stub goes when the cache is full.
 */
export class StubCache<T extends Rpc.DurableObjectBranded | undefined> {
  private readonly stubs = new Map<string, DurableObjectStub<T>>();

  constructor(
    private readonly namespace: DurableObjectNamespace<T>,
    private readonly size: number,
  ) {}

  async call<P extends PromiseLike<unknown>>(name: string, call: (stub: DurableObjectStub<T>) => P): Promise<Awaited<P>> {
    let stub = this.stubs.get(name);
    if (!stub) {
      stub = this.namespace.get(this.namespace.idFromName(name));
      if (this.stubs.size >= this.size) this.stubs.delete(this.stubs.keys().next().value!);
      this.stubs.set(name, stub);
    }
    try {
      return await call(stub);
    } catch (error) {
      this.stubs.delete(name);
      throw error;
    }
  }
}
