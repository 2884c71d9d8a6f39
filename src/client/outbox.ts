import {
  exceedsBytes,
  type AckFrame,
  type ClientFrame,
  type ErrorFrame,
  type HistoryFrame,
  type Limits,
  type ModeratedFrame,
  type RenamedFrame,
  type RenewedFrame,
  type UsersFrame,
} from "../protocol";
import { randomHex } from "../protocol/names";
import { ChatError } from "./chat-error";
import type { ChatEvents, Emitter } from "./events";
import { InFlight } from "./in-flight";
import { Pacer } from "./pacer";

/** How long to wait before asking again for what the room refused with a wait but did not say how long. */
const RETRY_MS = 1_000;

/** What the room answers a request with, when it does not refuse it. */
export type Answer = UsersFrame | RenamedFrame | RenewedFrame | ModeratedFrame;

/** A message, edit or delete: stored in the room's sequence, resent until answered. */
interface Write {
  id: string;
  frame: ClientFrame & { id: string };
  /** A message's text, for `pending`. */
  text: string | undefined;
  /** When it was asked for, among writes and requests. */
  order: number;
  resolve(seq: number): void;
  reject(error: ChatError): void;
}

/** Any other request: sent once, answered once. */
interface Ask {
  id: string;
  frame: ClientFrame & { id: string };
  order: number;
  resolve(answer: Answer): void;
  reject(error: ChatError): void;
}

/** A frame on the wire that the room owes an answer. */
type Sent = { kind: "write"; write: Write } | { kind: "ask"; ask: Ask } | { kind: "history"; after: number };

/** The next frame to send, once `at` has come; `send` says whether it went, or was refused here. */
type Next = { at: number; send(): boolean };

/**
 * Everything the client sends the room but pings, and the answers to it.
 * Messages, edits and deletes go one at a time, each once the last is
 * answered, so that the room stores them in the order they were asked
 * for, even when it makes one wait; every frame also waits for a token of
 * the client's copy of the room's rate limit (`Pacer`).
 */
export class Outbox {
  readonly #events: Emitter<ChatEvents>;
  readonly #send: (frame: ClientFrame) => void;
  readonly #pacer = new Pacer();
  #limits: Limits | null = null;
  /** Welcomed on the current socket: history pages may go. */
  #open = false;
  /** Caught up with the history on the current socket: writes and requests may go too. */
  #live = false;
  #pumpTimer: ReturnType<typeof setTimeout> | undefined;
  /** Counts requests and writes as they are made, so that they go out in that order. */
  #order = 0;
  /** Every write not yet answered, in the order asked for: the first is the next to go, or on the wire. */
  readonly #writes = new Map<string, Write>();
  /** Whether the first of `#writes` is on the wire. */
  #writing = false;
  /** Before this, no write goes: the room asked the last one to wait. */
  #writesNotBefore = 0;
  /** Requests not sent yet, in order. */
  #asks: Ask[] = [];
  /** The history page to ask for next, while catching up. */
  #historyAfter: number | null = null;
  #historyNotBefore = 0;
  readonly #inFlight = new InFlight<Sent>();

  constructor(events: Emitter<ChatEvents>, send: (frame: ClientFrame) => void) {
    this.#events = events;
    this.#send = send;
  }

  /** Messages not yet acknowledged, oldest first. */
  get pending(): Array<{ id: string; text: string }> {
    return Array.from(this.#writes.values()).flatMap(({ id, text }) => (text === undefined ? [] : [{ id, text }]));
  }

  /** A message, edit or delete; resolves with the `seq` the room stored it as. */
  write(frame: ClientFrame & { id: string }, text?: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.#writes.set(frame.id, { id: frame.id, frame, text, order: this.#order++, resolve, reject });
      this.pump();
    });
  }

  /** Any other request, sent under a new id; resolves with its answer, rejects with its error or if the connection drops first. */
  request(frame: ClientFrame): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const id = randomHex(16);
      this.#asks.push({ id, frame: { ...frame, id }, order: this.#order++, resolve, reject });
      this.pump();
    });
  }

  /** A new socket was welcomed, with these limits. */
  welcomed(limits: Limits, now: number): void {
    this.#open = true;
    this.#limits = limits;
    this.#pacer.reset(limits.framesPer10s, now);
  }

  /** The history has more pages: the next starts after `after`. */
  nextPage(after: number): void {
    this.#historyAfter = after;
    this.#historyNotBefore = 0;
    this.pump();
  }

  /** Caught up with the history: what waited may go, at the next `pump`. */
  live(): void {
    this.#live = true;
  }

  /** The socket is gone: requests on the wire are lost, writes go again on the next. */
  dropped(): void {
    this.#open = false;
    this.#live = false;
    this.#writing = false;
    this.#historyAfter = null;
    clearTimeout(this.#pumpTimer);
    const lost = new ChatError("connection_lost", "the connection dropped before the room answered");
    for (const sent of this.#inFlight.clear()) if (sent.kind === "ask") sent.ask.reject(lost);
  }

  /** The session ended: nothing waiting will go. */
  stop(error: ChatError): void {
    const writes = [...this.#writes.values()];
    this.#writes.clear();
    for (const write of writes) write.reject(error);
    for (const ask of this.#asks.splice(0)) ask.reject(error);
  }

  /** A history page, which answers a request for it unless it is the one after the welcome. */
  pageArrived(frame: HistoryFrame): void {
    this.#inFlight.answered(frame, "history");
  }

  ack(frame: AckFrame): void {
    const sent = this.#inFlight.answered(frame);
    this.#events.emit("ack", frame);
    if (sent?.kind !== "write") return;
    this.#writes.delete(sent.write.id);
    this.#writing = false;
    sent.write.resolve(frame.seq);
    this.pump();
  }

  answer(frame: Answer): void {
    const sent = this.#inFlight.answered(frame, "ask");
    this.#events.emit(frame.type, frame as never);
    if (sent?.kind === "ask") sent.ask.resolve(frame);
    this.pump();
  }

  error(frame: ErrorFrame): void {
    this.#events.emit("error", frame);
    const sent = this.#inFlight.answered(frame);
    const now = Date.now();
    const rateLimited = frame.code === "rate_limited";
    if (rateLimited) this.#pacer.refused(frame.retryAfterMs ?? RETRY_MS, now);
    const error = new ChatError(frame.code, frame.message, frame.retryAfterMs);
    if (sent?.kind === "write") {
      this.#writing = false;
      if (frame.retryAfterMs !== undefined || rateLimited) {
        // Kept first in line: what was asked for after it waits with it.
        this.#writesNotBefore = now + (frame.retryAfterMs ?? RETRY_MS);
      } else {
        this.#writes.delete(sent.write.id);
        sent.write.reject(error);
      }
    } else if (sent?.kind === "ask") {
      // A frame refused for its rate was not read: the same one again is harmless.
      if (rateLimited) this.#asks.unshift(sent.ask);
      else sent.ask.reject(error);
    } else if (sent?.kind === "history") {
      // Live frames wait for the rest of the history: ask again when the room says.
      this.#historyAfter = sent.after;
      this.#historyNotBefore = now + (frame.retryAfterMs ?? RETRY_MS);
    }
    this.pump();
  }

  /** Sends what may go now, and sets a timer for what must wait. */
  pump(): void {
    clearTimeout(this.#pumpTimer);
    this.#pumpTimer = undefined;
    for (;;) {
      const now = Date.now();
      const next = this.#next(now);
      if (next === null) return;
      const at = Math.max(next.at, this.#pacer.readyAt(now));
      if (at > now) {
        this.#pumpTimer = setTimeout(() => this.pump(), at - now);
        return;
      }
      if (next.send()) this.#pacer.take(now);
    }
  }

  /** What to send next: a history page while catching up; then writes and requests in the order they were made. */
  #next(now: number): Next | null {
    if (!this.#open) return null;
    const after = this.#historyAfter;
    if (after !== null) {
      return {
        at: this.#historyNotBefore,
        send: () => {
          this.#requestHistory(after);
          return true;
        },
      };
    }
    if (!this.#live) return null;
    const write = this.#writing ? undefined : this.#writes.values().next().value;
    const ask = this.#asks[0];
    const candidates: Array<Next & { order: number }> = [];
    if (write !== undefined) candidates.push({ at: this.#writesNotBefore, order: write.order, send: () => this.#transmit(write) });
    if (ask !== undefined) candidates.push({ at: now, order: ask.order, send: () => this.#ask(ask) });
    // The oldest of those that may go now; else the first that may.
    const ready = candidates.filter((c) => c.at <= now).sort((a, b) => a.order - b.order);
    return ready[0] ?? candidates.sort((a, b) => a.at - b.at)[0] ?? null;
  }

  /** A frame the room would refuse unread is refused here instead: the room could not say which frame it refused. */
  #tooLarge(frame: ClientFrame): ChatError | null {
    const max = this.#limits?.frameBytes;
    if (max === undefined || !exceedsBytes(JSON.stringify(frame), max)) return null;
    return new ChatError("too_large", `frames are at most ${max} bytes`);
  }

  #transmit(write: Write): boolean {
    const tooLarge = this.#tooLarge(write.frame);
    if (tooLarge !== null) {
      this.#writes.delete(write.id);
      write.reject(tooLarge);
      return false;
    }
    this.#writing = true;
    this.#inFlight.add(write.id, { kind: "write", write });
    this.#send(write.frame);
    return true;
  }

  #ask(ask: Ask): boolean {
    this.#asks.shift();
    const tooLarge = this.#tooLarge(ask.frame);
    if (tooLarge !== null) {
      ask.reject(tooLarge);
      return false;
    }
    this.#inFlight.add(ask.id, { kind: "ask", ask });
    this.#send(ask.frame);
    return true;
  }

  #requestHistory(after: number): void {
    this.#historyAfter = null;
    const id = randomHex(16);
    this.#inFlight.add(id, { kind: "history", after });
    this.#send({ type: "history", after, id });
  }
}
