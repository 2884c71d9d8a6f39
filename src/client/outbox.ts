import {
  exceedsBytes,
  type AckFrame,
  type ClientFrame,
  type ErrorFrame,
  type HistoryFrame,
  type Limits,
  type ModeratedFrame,
  type ReadRequest,
  type RenamedFrame,
  type RenewedFrame,
  type SearchFrame,
  type ThreadFrame,
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
export type Answer = UsersFrame | RenamedFrame | RenewedFrame | ModeratedFrame | ThreadFrame | SearchFrame;

/** A message, edit, delete or reaction: stored in the room's sequence, resent until answered. */
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

/**
 * Writes that go one at a time, each once the one before is answered, so
 * that the room stores them in the order they were asked for, and paced to
 * one budget of the room's.
 */
class Lane {
  /** Every write not yet answered, in the order asked for: the first is the next to go, or on the wire. */
  readonly writes = new Map<string, Write>();
  /** Whether the first of `writes` is on the wire. */
  writing = false;
  /** Before this, no write goes: the room asked the last one to wait. */
  notBefore = 0;

  constructor(readonly pacer: Pacer) {}

  /** The write to send next, unless one is on the wire. */
  get next(): Write | undefined {
    return this.writing ? undefined : this.writes.values().next().value;
  }

  /** The oldest write not yet answered. */
  get first(): Write | undefined {
    return this.writes.values().next().value;
  }
}

/** A frame on the wire that the room owes an answer. */
type Sent = { kind: "write"; write: Write; lane: Lane } | { kind: "ask"; ask: Ask } | { kind: "history"; after: number };

/** A frame that may go once `at` has come and `pacer` has a token; `send` says whether it went, or was refused here. */
type Next = { at: number; order: number; pacer: Pacer; send(): boolean };

/**
 * Everything the client sends the room but pings and typing, and the
 * answers to it. Messages, edits and deletes go one at a time, each once
 * the last is answered, so that the room stores them in the order they
 * were asked for, even when it makes one wait; every frame also waits for
 * a token of the client's copy of the room's rate limit (`Pacer`).
 * Reactions have a budget of their own in the room, and a lane of their
 * own here, so that they never hold up a message; but a reaction waits for
 * the messages, edits and deletes asked for before it, so that it never
 * overtakes what it may be about.
 */
export class Outbox {
  readonly #events: Emitter<ChatEvents>;
  readonly #send: (frame: ClientFrame) => void;
  readonly #pacer = new Pacer();
  /** Messages, edits and deletes, paced with everything else but reactions. */
  readonly #messages = new Lane(this.#pacer);
  readonly #reactions = new Lane(new Pacer());
  #limits: Limits | null = null;
  /** Welcomed on the current socket: history pages may go. */
  #open = false;
  /** Caught up with the history on the current socket: writes and requests may go too. */
  #live = false;
  #pumpTimer: ReturnType<typeof setTimeout> | undefined;
  /** Counts requests and writes as they are made, so that they go out in that order. */
  #order = 0;
  /** Requests not sent yet, in order. */
  #asks: Ask[] = [];
  /** A frame the room does not answer, waiting for a token: a read position. */
  #notice: { frame: ReadRequest; order: number } | null = null;
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
    return Array.from(this.#messages.writes.values()).flatMap(({ id, text }) => (text === undefined ? [] : [{ id, text }]));
  }

  /** A message, edit, delete or reaction; resolves with the `seq` the room stored it as. */
  write(frame: ClientFrame & { id: string }, text?: string): Promise<number> {
    const lane = frame.type === "react" || frame.type === "unreact" ? this.#reactions : this.#messages;
    return new Promise((resolve, reject) => {
      lane.writes.set(frame.id, { id: frame.id, frame, text, order: this.#order++, resolve, reject });
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

  /**
   * A frame the room does not answer, to go with the frames' budget while
   * live, so that it never costs a message a refusal: a read position. A
   * newer one replaces it while it waits; a drop forgets it.
   */
  notify(frame: ReadRequest): void {
    this.#notice = { frame, order: this.#notice?.order ?? this.#order++ };
    this.pump();
  }

  /** A new socket was welcomed, with these limits. */
  welcomed(limits: Limits, now: number): void {
    this.#open = true;
    this.#limits = limits;
    this.#pacer.reset(limits.framesPer10s, now);
    this.#reactions.pacer.reset(limits.reactionsPer10s, now);
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
    this.#messages.writing = false;
    this.#reactions.writing = false;
    this.#historyAfter = null;
    this.#notice = null;
    clearTimeout(this.#pumpTimer);
    const lost = new ChatError("connection_lost", "the connection dropped before the room answered");
    for (const sent of this.#inFlight.clear()) if (sent.kind === "ask") sent.ask.reject(lost);
  }

  /** The session ended: nothing waiting will go. */
  stop(error: ChatError): void {
    const writes = [...this.#messages.writes.values(), ...this.#reactions.writes.values()].sort((a, b) => a.order - b.order);
    this.#messages.writes.clear();
    this.#reactions.writes.clear();
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
    sent.lane.writes.delete(sent.write.id);
    sent.lane.writing = false;
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
    // It names a frame that owes no answer here: a typing frame's.
    if (sent === undefined && frame.id !== undefined) return;
    const now = Date.now();
    const rateLimited = frame.code === "rate_limited";
    if (rateLimited) (sent?.kind === "write" ? sent.lane.pacer : this.#pacer).refused(frame.retryAfterMs ?? RETRY_MS, now);
    const error = new ChatError(frame.code, frame.message, frame.retryAfterMs);
    if (sent?.kind === "write") {
      const { lane, write } = sent;
      lane.writing = false;
      if (frame.retryAfterMs !== undefined || rateLimited) {
        // Kept first in line: what was asked for after it waits with it.
        lane.notBefore = now + (frame.retryAfterMs ?? RETRY_MS);
      } else {
        lane.writes.delete(write.id);
        write.reject(error);
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
      const candidates = this.#candidates(now).map((next) => ({ next, at: Math.max(next.at, next.pacer.readyAt(now)) }));
      // The oldest of those that may go now; else wait for the first that may.
      const ready = candidates.filter((c) => c.at <= now).sort((a, b) => a.next.order - b.next.order)[0];
      if (ready === undefined) {
        const first = Math.min(...candidates.map((c) => c.at));
        if (first !== Infinity) this.#pumpTimer = setTimeout(() => this.pump(), first - now);
        return;
      }
      if (ready.next.send()) ready.next.pacer.take(now);
    }
  }

  /** What may go next: a history page while catching up; then the next write of each lane and the next request. */
  #candidates(now: number): Next[] {
    if (!this.#open) return [];
    const after = this.#historyAfter;
    if (after !== null) {
      const send = () => {
        this.#requestHistory(after);
        return true;
      };
      return [{ at: this.#historyNotBefore, order: -1, pacer: this.#pacer, send }];
    }
    if (!this.#live) return [];
    const candidates: Next[] = [];
    const write = (lane: Lane, write: Write): Next => ({ at: lane.notBefore, order: write.order, pacer: lane.pacer, send: () => this.#transmit(write, lane) });
    const message = this.#messages.next;
    if (message !== undefined) candidates.push(write(this.#messages, message));
    const reaction = this.#reactions.next;
    // Once the messages, edits and deletes asked for before it are answered: it may be about one of them.
    if (reaction !== undefined && reaction.order < (this.#messages.first?.order ?? Infinity)) candidates.push(write(this.#reactions, reaction));
    const ask = this.#asks[0];
    if (ask !== undefined) candidates.push({ at: now, order: ask.order, pacer: this.#pacer, send: () => this.#ask(ask) });
    const notice = this.#notice;
    if (notice !== null) candidates.push({ at: now, order: notice.order, pacer: this.#pacer, send: () => this.#notify(notice.frame) });
    return candidates;
  }

  /** A frame the room would refuse unread is refused here instead: the room could not say which frame it refused. */
  #tooLarge(frame: ClientFrame): ChatError | null {
    const max = this.#limits?.frameBytes;
    if (max === undefined || !exceedsBytes(JSON.stringify(frame), max)) return null;
    return new ChatError("too_large", `frames are at most ${max} bytes`);
  }

  #transmit(write: Write, lane: Lane): boolean {
    const tooLarge = this.#tooLarge(write.frame);
    if (tooLarge !== null) {
      lane.writes.delete(write.id);
      write.reject(tooLarge);
      return false;
    }
    lane.writing = true;
    this.#inFlight.add(write.id, { kind: "write", write, lane });
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

  #notify(frame: ReadRequest): boolean {
    this.#notice = null;
    this.#send(frame);
    return true;
  }

  #requestHistory(after: number): void {
    this.#historyAfter = null;
    const id = randomHex(16);
    this.#inFlight.add(id, { kind: "history", after });
    this.#send({ type: "history", after, id });
  }
}
