import type { ReadFrame, ReadRequest, WelcomeFrame } from "../protocol";
import { randomHex } from "../protocol/names";
import type { ChatEvents, Emitter } from "./events";

/**
 * The least time between two `read` frames. An app marks read as messages
 * scroll past, which can be many a second; the room needs only where that
 * ended, and a second device can wait this long to clear its marker.
 */
export const READ_EVERY_MS = 2_000;

/**
 * How far this client's account has read in the room: the welcome's word,
 * raised by `markRead` here and by `read` frames from the account's other
 * devices, never lowered but by a history that started over. The room hears
 * of a position it does not have yet, at most once per `READ_EVERY_MS`,
 * the newest one when that time is up; a new socket only of what went past
 * the position its welcome says.
 */
export class ReadPosition {
  readonly #events: Emitter<ChatEvents>;
  readonly #send: (frame: ReadRequest) => void;
  #seq = 0;
  /** The position the current socket's room has, as far as this client knows. */
  #roomSeq = 0;
  /** The last welcome's position: the room's word after its history started over. */
  #welcomeSeq = 0;
  /** Caught up with the history on the current socket: a read frame may go. */
  #live = false;
  /** The room has no account for this client to keep a position for: it stays here. */
  #local = false;
  #sentAt = -Infinity;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(events: Emitter<ChatEvents>, send: (frame: ReadRequest) => void) {
    this.#events = events;
    this.#send = send;
    events.on("reset", () => {
      // The position counted in a history that is gone: the room's word for the new one stands.
      if (this.#welcomeSeq !== this.#seq) this.#move(this.#welcomeSeq);
    });
  }

  get seq(): number {
    return this.#seq;
  }

  welcomed({ read }: Pick<WelcomeFrame, "read">): void {
    this.#welcomeSeq = this.#roomSeq = read;
    if (read > this.#seq) this.#move(read);
  }

  /** Caught up with the history: a position the room lacks may go now. */
  live(): void {
    this.#live = true;
    this.#flush();
  }

  dropped(): void {
    this.#live = false;
  }

  /** This client read up to `seq`. */
  mark(seq: number): void {
    if (!(seq > this.#seq)) return;
    this.#move(seq);
    this.#flush();
  }

  /** Another device of the account read up to `seq`. */
  heard({ seq }: ReadFrame): void {
    this.#roomSeq = Math.max(this.#roomSeq, seq);
    if (seq > this.#seq) this.#move(seq);
  }

  /** The room keeps no position without an account (a token's `sub` or a client id): asking again would be refused again. */
  refused(): void {
    this.#local = true;
    this.stop();
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #move(seq: number): void {
    this.#seq = seq;
    this.#events.emit("read", { seq });
  }

  #flush(): void {
    if (!this.#live || this.#local || this.#seq <= this.#roomSeq || this.#timer !== undefined) return;
    const now = Date.now();
    const wait = this.#sentAt + READ_EVERY_MS - now;
    if (wait > 0) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#flush();
      }, wait);
      return;
    }
    this.#sentAt = now;
    this.#roomSeq = this.#seq;
    // An id makes a refusal name this frame, so that it is not taken for the answer to a request.
    this.#send({ type: "read", seq: this.#seq, id: randomHex(16) });
  }
}
