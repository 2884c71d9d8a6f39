import { lastPosition, positionOf, type HistoryFrame, type MessageFrame, type SequenceFrame, type WelcomeFrame } from "../protocol";
import type { ChatEvents, Emitter } from "./events";
import type { Me } from "./me";

/**
 * The room's sequence as the app has it: every message, edit, delete and
 * reaction delivered once, in order, from the history after each welcome
 * and then live, and where the next socket resumes.
 */
export class Timeline {
  readonly #events: Emitter<ChatEvents>;
  readonly #me: Me;
  /** The last number of the room's sequence this client has: everything up to it is delivered. */
  #lastSeq = 0;
  /** The history `#lastSeq` counts in. */
  #epoch: WelcomeFrame["epoch"] | null = null;
  #resuming = false;
  /** Caught up with the history on the current socket: live frames are delivered as they come. */
  #live = false;
  /** Live frames that arrived while history pages were still coming: they come after those. */
  #held: SequenceFrame[] = [];

  constructor(events: Emitter<ChatEvents>, me: Me) {
    this.#events = events;
    this.#me = me;
  }

  get lastSeq(): number {
    return this.#lastSeq;
  }

  /** Asks the next socket's history to start after what was delivered, once there is something to resume. */
  resume(query: URLSearchParams): void {
    if (!this.#resuming) return;
    query.set("since", String(this.#lastSeq));
    if (this.#epoch !== null) query.set("epoch", this.#epoch);
  }

  welcomed(epoch: WelcomeFrame["epoch"]): void {
    this.#epoch = epoch;
  }

  /** A message, edit, delete or reaction as it happens. */
  arrived(frame: SequenceFrame): void {
    if (this.#live) this.#deliver(frame);
    else this.#held.push(frame);
  }

  /**
   * One history frame; returns whether more pages follow. A long history
   * comes in pages, each asked for after the last; a last page covers the
   * room's sequence up to its `lastSeq`: what it does not list was a
   * change already applied to a message it does.
   */
  page(frame: HistoryFrame): boolean {
    const { messages, changes, gap, reset, more, lastSeq } = frame;
    if (reset) {
      this.#lastSeq = 0;
      this.#events.emit("reset", undefined);
    } else if (gap) {
      this.#events.emit("gap", undefined);
    }
    const cursor = this.#lastSeq;
    // Each one delivered counts at once, so that a listener that marks it read may.
    for (const message of messages) {
      if (message.seq <= cursor) continue;
      this.#lastSeq = Math.max(this.#lastSeq, message.seq);
      this.#message(message);
    }
    for (const change of changes) {
      if (change.change <= cursor) continue;
      this.#lastSeq = Math.max(this.#lastSeq, change.change);
      this.#events.emit("change", change);
    }
    this.#lastSeq = Math.max(this.#lastSeq, more ? lastPosition(frame) : lastSeq);
    return more;
  }

  /** Caught up with the history: what arrived live meanwhile is delivered now, each number once. */
  live(): void {
    this.#live = true;
    this.#resuming = true;
    for (const held of this.#held.splice(0)) this.#deliver(held);
  }

  /** The socket is gone: the next one's history brings again what was held. */
  dropped(): void {
    this.#live = false;
    this.#held = [];
  }

  #deliver(frame: SequenceFrame): void {
    const position = positionOf(frame);
    if (position <= this.#lastSeq) return;
    this.#lastSeq = position;
    if (frame.type === "message") this.#message(frame);
    else this.#events.emit("change", frame);
  }

  #message(message: MessageFrame): void {
    this.#events.emit("message", { ...message, mentionsMe: this.#me.mentionedIn(message) });
  }
}
