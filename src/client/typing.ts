import type { TypingFrame, TypingRequest, WelcomeFrame } from "../protocol";
import { randomHex } from "../protocol/names";
import type { ChatEvents, Emitter } from "./events";
import type { Me } from "./me";
import { Pacer } from "./pacer";

/**
 * Typing, both ways. Out: while the user types, a `typing` frame once per
 * half of the room's `typingSeconds` (so that the room's set never lapses
 * between two), a stop when they clear what they typed, and nothing when a
 * message went, since the room stops a typer's typing itself then; paced
 * to the welcome's budget for typing, which is not the one messages use.
 * Nothing is queued across sockets: an "is typing" said late is wrong. In:
 * who else the room says is typing.
 */
export class Typing {
  readonly #events: Emitter<ChatEvents>;
  readonly #me: Me;
  readonly #send: (frame: TypingRequest) => void;
  readonly #pacer = new Pacer();
  /** Welcomed on the current socket. */
  #open = false;
  #everyMs = 0;
  /** When the room was last told this client types; null once it stopped, or was never told on this socket. */
  #announcedAt: number | null = null;
  /** A frame waiting for a token of the typing budget. */
  #waiting: TypingRequest | null = null;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** The last `typing` event named someone: a drop must say that nobody is typing any more. */
  #othersTyping = false;

  constructor(events: Emitter<ChatEvents>, me: Me, send: (frame: TypingRequest) => void) {
    this.#events = events;
    this.#me = me;
    this.#send = send;
  }

  welcomed({ typingSeconds, limits }: Pick<WelcomeFrame, "typingSeconds" | "limits">, now: number): void {
    this.#open = true;
    this.#everyMs = (typingSeconds * 1000) / 2;
    this.#pacer.reset(limits.typingPer10s, now);
  }

  /** The user typed (`active`), or cleared what they typed. */
  typing(active: boolean): void {
    if (!this.#open) return;
    const now = Date.now();
    if (active) {
      if (this.#waiting?.stop === true) this.#cancel();
      if (this.#waiting !== null) return;
      if (this.#announcedAt !== null && now - this.#announcedAt < this.#everyMs) return;
      this.#go({ type: "typing" }, now);
      return;
    }
    if (this.#waiting !== null && this.#waiting.stop === undefined) this.#cancel();
    if (this.#announcedAt !== null && this.#waiting === null) this.#go({ type: "typing", stop: true }, now);
  }

  /** A message went: the room stopped this client's typing, and the next keystroke starts it again. */
  messageSent(): void {
    this.#cancel();
    this.#announcedAt = null;
  }

  /** Who the room says is typing, this client left out. */
  heard({ users, count }: TypingFrame): void {
    const others = users.filter((u) => !this.#me.is(u.id));
    const typing = { users: others, count: Math.max(others.length, count - (users.length - others.length)) };
    this.#othersTyping = typing.count > 0;
    this.#events.emit("typing", typing);
  }

  /** The socket is gone, and with it whatever the room knew of anyone's typing on it. */
  dropped(): void {
    this.#open = false;
    this.#cancel();
    this.#announcedAt = null;
    if (!this.#othersTyping) return;
    this.#othersTyping = false;
    this.#events.emit("typing", { users: [], count: 0 });
  }

  #go(frame: TypingRequest, now: number): void {
    const at = this.#pacer.readyAt(now);
    if (at <= now) {
      this.#transmit(frame, now);
      return;
    }
    this.#waiting = frame;
    this.#timer = setTimeout(() => {
      this.#waiting = null;
      this.#transmit(frame, Date.now());
    }, at - now);
  }

  #transmit(frame: TypingRequest, now: number): void {
    this.#pacer.take(now);
    // An id makes any refusal name this frame, so that it is not taken for the answer to something else.
    this.#send({ ...frame, id: randomHex(16) });
    this.#announcedAt = frame.stop ? null : now;
  }

  #cancel(): void {
    clearTimeout(this.#timer);
    this.#waiting = null;
  }
}
