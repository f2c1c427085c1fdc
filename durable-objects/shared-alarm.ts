/**
 * One Durable Object alarm shared by several jobs (fan-out retries, live notices): each asks to run by some
 * time and the earliest request wins, so no job pushes back another's. Remembered in memory only: after a
 * restart the first request may move a stored earlier alarm later, never lose it.
 */
export class SharedAlarm {
  private at: number | null = null;

  constructor(private readonly storage: DurableObjectStorage) {}

  /** Makes sure the alarm fires no later than `time`. */
  requestBy(time: number): void {
    if (this.at !== null && this.at <= time) return;
    this.at = time;
    void this.storage.setAlarm(time);
  }

  /**
   * Moves an alarm due before `soonerThan` to the time `to()` gives, for a caller that knows no job needs it
   * earlier. Each move is a write, so callers move it only when it is about to fire; `to` runs only then.
   */
  postpone(soonerThan: number, to: () => number): void {
    if (this.at === null || this.at >= soonerThan) return;
    const time = to();
    if (this.at >= time) return;
    this.at = time;
    void this.storage.setAlarm(time);
  }

  /** Call first thing in `alarm()`: the alarm that was set has fired. */
  fired(): void {
    this.at = null;
  }
}
