/**
 * An object's one alarm, kept only while it has work: `due` says when the
 * next run must be, or null when there is none. Knowing whether one is
 * pending spares busy paths a storage read; a fresh instance asks storage
 * once, which also re-arms an alarm that a local code reload dropped.
 */
export class Alarm {
  #pending = false;

  constructor(
    private readonly storage: DurableObjectStorage,
    private readonly due: (now: number) => number | null,
  ) {}

  /** The alarm is running: whatever comes next must schedule the next one. */
  fired(): void {
    this.#pending = false;
  }

  /** Schedules the alarm if it has work and none is pending, or anew when `reschedule`. */
  async arm(reschedule = false): Promise<void> {
    if (this.#pending && !reschedule) return;
    const due = this.due(Date.now());
    if (due === null) return;
    if (reschedule || (await this.storage.getAlarm()) === null) await this.storage.setAlarm(due);
    this.#pending = true;
  }

  /** Keeps the alarm while there is work for it, and deletes it once there is none. */
  async settle(): Promise<void> {
    if (this.due(Date.now()) !== null) return this.arm();
    await this.storage.deleteAlarm();
    this.#pending = false;
  }
}
