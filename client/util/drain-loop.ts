/**
 * A store-backed queue drained by one pass at a time: `kick` starts a pass (or asks for another after the
 * current one), errors go to `onError`, and a pass that met trouble can pause the loop until a kick resumes it.
 *
 * @example
 * class Outbox extends DrainLoop {
 *   protected async drain() { while (!this.paused && (await next())) await sendIt(); }
 * }
 */
export abstract class DrainLoop {
  private running: Promise<void> | undefined;
  private again = false;
  /** Set by a pass that should wait for the next connection before trying again. */
  protected paused = false;

  constructor(private readonly onError: (error: unknown) => void) {}

  protected abstract drain(): Promise<void>;

  /**
   * Starts draining (or drains again after the current pass).
   * @example
   * outbox.kick({ resume: true }); // on `ready`
   */
  kick(options: { resume?: boolean } = {}): void {
    if (options.resume) this.paused = false;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.drain()
      .catch(this.onError)
      .finally(() => {
        this.running = undefined;
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
  }

  /**
   * Resolves when the current pass is over.
   * @example
   * await outbox.idle();
   */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }
}
