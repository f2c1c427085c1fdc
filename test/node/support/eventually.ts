/**
 * Waits until `probe` returns a truthy value (checked on every turn of a short poll), or fails after
 * `timeoutMs` naming the condition. For state the SDK reaches asynchronously, where no event says "now".
 */
export async function eventually<T>(probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms: ${probe.toString()}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
