import type { History, NewMessage } from "./history";
import type { MessageFrame } from "./protocol";

/**
 * What publishing a message comes to: its seq, and whether it was a resend;
 * or, for an id already used for another text, the refusal and the seq
 * that id holds.
 */
export type Published = { ok: true; seq: number; duplicate: boolean } | { ok: false; code: "id_conflict"; seq: number };

/** A stored message waiting for its broadcast, and who gets its ack. */
export interface Unsent<To> {
  frame: MessageFrame;
  ack?: { to: To; id: string };
}

/**
 * The room's single writer: it numbers, stores and deduplicates messages,
 * and holds each stored one until the room broadcasts it, in seq order.
 * `To` is whoever an ack goes to.
 */
export class Sequencer<To> {
  readonly #unsent: Array<Unsent<To>> = [];
  #broadcastSeq: number;

  constructor(
    private readonly history: History,
    private readonly keep: number,
  ) {
    // What an earlier instance stored, it broadcast, or its sockets closed with it.
    this.#broadcastSeq = history.lastSeq;
  }

  /** The newest seq handed to the broadcast. */
  get broadcastSeq(): number {
    return this.#broadcastSeq;
  }

  get hasUnsent(): boolean {
    return this.#unsent.length > 0;
  }

  /**
   * Takes the seq and writes the message in one synchronous step, so nothing
   * can interleave, and queues its broadcast; if the write throws, nothing is
   * queued. A resend of a kept message is answered with its seq and not
   * stored again; the same id with another text is refused, since it cannot
   * be a resend and acknowledging it would lose that text.
   */
  publish(message: NewMessage, ackTo?: To): Published {
    const { id } = message;
    if (id !== undefined) {
      const kept = this.history.stored(message.sender, id);
      if (kept?.text === message.text) return { ok: true, seq: kept.seq, duplicate: true };
      if (kept !== null) return { ok: false, code: "id_conflict", seq: kept.seq };
    }
    const frame = this.history.append(message, this.keep);
    this.#unsent.push(ackTo !== undefined && id !== undefined ? { frame, ack: { to: ackTo, id } } : { frame });
    return { ok: true, seq: frame.seq, duplicate: false };
  }

  /** The next message to broadcast, in seq order, or undefined when none waits. */
  next(): Unsent<To> | undefined {
    const unsent = this.#unsent.shift();
    if (unsent !== undefined) this.#broadcastSeq = unsent.frame.seq;
    return unsent;
  }
}
