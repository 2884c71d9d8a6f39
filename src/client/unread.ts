import type { ChatEvents, Emitter } from "./events";
import type { Me } from "./me";

/**
 * What the app was handed that its account has not read: the messages
 * after the read position, by someone else, not deleted, and how many of
 * those mention this client. It follows the events the app gets, and
 * keeps each such message until the position passes it, so that a delete
 * or an edit that mentions this client can still change the counts.
 */
export class Unread {
  readonly #events: Emitter<ChatEvents>;
  readonly #me: Me;
  /** Each unread message, by seq: whether it mentions this client. */
  readonly #messages = new Map<number, boolean>();
  #readSeq = 0;
  #mentions = 0;
  /** The counts the last `unread` event gave. */
  #told = { count: 0, mentions: 0 };

  constructor(events: Emitter<ChatEvents>, me: Me) {
    this.#events = events;
    this.#me = me;
    events.on("message", (message) => {
      if (message.seq <= this.#readSeq || message.deletedAt !== undefined || this.#me.wrote(message)) return;
      this.#set(message.seq, message.mentionsMe);
      this.#tell();
    });
    events.on("change", (change) => {
      if (!this.#messages.has(change.seq)) return;
      if (change.type === "delete") this.#delete(change.seq);
      else if (change.type === "edit") this.#set(change.seq, this.#me.mentionedIn(change));
      this.#tell();
    });
    events.on("read", ({ seq }) => {
      this.#readSeq = seq;
      // In seq order: those read come first.
      for (const unread of this.#messages.keys()) {
        if (unread > seq) break;
        this.#delete(unread);
      }
      this.#tell();
    });
    events.on("reset", () => {
      // Those numbers belonged to a history that is gone.
      this.#messages.clear();
      this.#mentions = 0;
      this.#tell();
    });
  }

  get count(): number {
    return this.#messages.size;
  }

  #set(seq: number, mentionsMe: boolean): void {
    // Not deleted first: setting a key that is there keeps its place, and the map must stay in seq order.
    if (this.#messages.get(seq) === true) this.#mentions--;
    this.#messages.set(seq, mentionsMe);
    if (mentionsMe) this.#mentions++;
  }

  #delete(seq: number): void {
    if (this.#messages.get(seq) === true) this.#mentions--;
    this.#messages.delete(seq);
  }

  #tell(): void {
    const now = { count: this.#messages.size, mentions: this.#mentions };
    if (now.count === this.#told.count && now.mentions === this.#told.mentions) return;
    this.#told = now;
    this.#events.emit("unread", now);
  }
}
