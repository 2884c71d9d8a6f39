/**
 * What a socket owes answers to, by request id, oldest first. An answer
 * carries back the id of what it answers; one without (a frame the room
 * refused before reading it) answers the oldest request on the wire, since
 * the room answers a socket's frames in the order it reads them.
 */
export class InFlight<Sent extends { kind: string }> {
  readonly #sent = new Map<string, Sent>();

  add(id: string, sent: Sent): void {
    this.#sent.set(id, sent);
  }

  /** What an answer answers, now answered: the request with its id; without one, the oldest that such an answer can answer (`only`). */
  answered(frame: { id?: string }, only?: Sent["kind"]): Sent | undefined {
    let id = frame.id;
    if (id === undefined) {
      for (const [key, sent] of this.#sent) {
        if (only === undefined || sent.kind === only) {
          id = key;
          break;
        }
      }
    }
    if (id === undefined) return undefined;
    const sent = this.#sent.get(id);
    this.#sent.delete(id);
    return sent;
  }

  /** Forgets everything on the wire, which will not be answered now; returns it. */
  clear(): Sent[] {
    const sent = [...this.#sent.values()];
    this.#sent.clear();
    return sent;
  }
}
