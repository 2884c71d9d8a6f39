import { CLOSE, type ClientFrame, type ClosingFrame, type HistoryFrame, type Refusal, type RenamedFrame, type ServerFrame, type User } from "../protocol";
import { randomHex } from "../protocol/names";
import { ChatError } from "./chat-error";
import { closeWords, finalRefusal } from "./closes";
import type { ChatEvents, ConnectionState, Emitter } from "./events";
import type { ChatClientOptions } from "./options";
import { Me } from "./me";
import { Outbox, type Answer } from "./outbox";
import { ReadPosition } from "./read-position";
import { Timeline } from "./timeline";
import { Transport } from "./transport";
import { Typing } from "./typing";
import { Unread } from "./unread";

/**
 * One client's session with one room, over as many sockets as it takes:
 * who the room says the client is, what each frame from the room means for
 * the timeline and the outbox, and what each close means: come back and
 * resume, or stop and say why.
 */
export class Session {
  readonly #options: ChatClientOptions;
  readonly #events: Emitter<ChatEvents>;
  readonly #clientId: string;
  /** The name to join with: the option's, until a rename. */
  #name: string | undefined;
  #state: ConnectionState = "connecting";
  #you: User | null = null;
  #stopped = false;
  /** Why the session stopped, when the room ended it. */
  #stopReason: Refusal | null = null;
  readonly #me = new Me();
  readonly #timeline: Timeline;
  readonly #outbox: Outbox;
  readonly #typing: Typing;
  readonly #read: ReadPosition;
  readonly #unread: Unread;
  readonly #transport: Transport;

  constructor(options: ChatClientOptions, events: Emitter<ChatEvents>) {
    this.#options = options;
    this.#events = events;
    this.#clientId = options.clientId ?? randomHex(16);
    this.#name = options.name;
    this.#timeline = new Timeline(events, this.#me);
    this.#outbox = new Outbox(events, (frame) => {
      if (frame.type === "message") this.#typing.messageSent();
      this.#transport.send(frame);
    });
    this.#typing = new Typing(events, this.#me, (frame) => this.#transport.send(frame));
    // Before the app's listeners: what they read of the position and the counts is current.
    this.#read = new ReadPosition(events, (frame) => this.#outbox.notify(frame));
    this.#unread = new Unread(events, this.#me);
    this.#transport = new Transport(options, {
      address: () => this.#address(),
      connecting: () => this.#setState("connecting"),
      frame: (frame) => this.#receive(frame),
      dropped: () => {
        this.#timeline.dropped();
        this.#outbox.dropped();
        this.#typing.dropped();
        this.#read.dropped();
      },
      ended: (code) => this.#ended(code, null),
      waiting: (retryInMs, reason, refusal) => {
        if (refusal !== null) this.#events.emit("refused", { refusal, retryInMs });
        this.#setState("waiting", retryInMs, reason);
      },
      refused: (refusal) => this.#stop(refusal),
    });
    this.#transport.start();
  }

  get state(): ConnectionState {
    return this.#state;
  }

  get you(): User | null {
    return this.#you;
  }

  get lastSeq(): number {
    return this.#timeline.lastSeq;
  }

  get pending(): Array<{ id: string; text: string }> {
    return this.#outbox.pending;
  }

  get readSeq(): number {
    return this.#read.seq;
  }

  get unread(): number {
    return this.#unread.count;
  }

  /** Never past what was handed over: what has not arrived cannot have been read. */
  markRead(seq = this.#timeline.lastSeq): void {
    if (!this.#stopped) this.#read.mark(Math.min(seq, this.#timeline.lastSeq));
  }

  write(frame: ClientFrame & { id: string }, text?: string): Promise<number> {
    if (this.#stopped) return Promise.reject(this.#stoppedError());
    return this.#outbox.write(frame, text);
  }

  typing(active: boolean): void {
    this.#typing.typing(active);
  }

  isYou(id: User["id"]): boolean {
    return this.#me.is(id);
  }

  request(frame: ClientFrame): Promise<Answer> {
    if (this.#stopped) return Promise.reject(this.#stoppedError());
    return this.#outbox.request(frame);
  }

  async rename(name: string): Promise<User> {
    const answer = (await this.request({ type: "rename", name })) as RenamedFrame;
    this.#you = answer.user;
    // Reconnecting under the old name would undo it.
    this.#name = answer.user.name;
    return answer.user;
  }

  wake(): void {
    this.#transport.wake();
  }

  close(): void {
    this.#stop(null);
  }

  #address(): URL {
    const url = new URL(this.#options.url);
    url.search = "";
    if (this.#name !== undefined) url.searchParams.set("name", this.#name);
    url.searchParams.set("client", this.#clientId);
    // A busy room may then put several frames in one message, which the transport hands over one by one.
    url.searchParams.set("batch", "1");
    this.#timeline.resume(url.searchParams);
    return url;
  }

  #setState(state: ConnectionState, retryInMs?: number, reason?: string): void {
    this.#state = state;
    this.#events.emit("state", { state, ...(retryInMs !== undefined && { retryInMs }), ...(reason !== undefined && { reason }) });
  }

  #receive(frame: ServerFrame): void {
    switch (frame.type) {
      case "welcome":
        this.#transport.admitted();
        this.#timeline.welcomed(frame.epoch);
        this.#you = frame.you;
        this.#me.welcomed(frame);
        this.#outbox.welcomed(frame.limits, Date.now());
        this.#typing.welcomed(frame, Date.now());
        this.#read.welcomed(frame);
        this.#events.emit("welcome", frame);
        return;
      case "history":
        // The first one follows the welcome; the rest answer requests for more.
        this.#outbox.pageArrived(frame);
        this.#history(frame);
        return;
      case "message":
      case "edit":
      case "delete":
      case "reactions":
        this.#timeline.arrived(frame);
        return;
      case "typing":
        this.#typing.heard(frame);
        return;
      case "ack":
        this.#outbox.ack(frame);
        return;
      case "error":
        // Only a read frame is refused for want of an account.
        if (frame.code === "account_required") this.#read.refused();
        this.#outbox.error(frame);
        return;
      case "users":
      case "renamed":
      case "renewed":
      case "moderated":
      case "thread":
      case "search":
        this.#outbox.answer(frame);
        return;
      case "read":
        this.#read.heard(frame);
        return;
      case "receipts":
        this.#events.emit("receipts", frame);
        return;
      case "closing":
        this.#closing(frame);
        return;
      case "presence":
        this.#events.emit("presence", frame);
        return;
      case "tick":
        this.#events.emit("tick", frame);
        return;
    }
  }

  /** A history page: ask for the next, or, caught up, go live. */
  #history(frame: HistoryFrame): void {
    if (this.#timeline.page(frame)) {
      this.#outbox.nextPage(this.#timeline.lastSeq);
      return;
    }
    // Writes may go from here on, even from the listeners of what was held.
    this.#outbox.live();
    this.#timeline.live();
    this.#read.live();
    this.#transport.startPinging();
    this.#setState("open");
    this.#outbox.pump();
  }

  /** The room said it is closing this socket, and why: act on it now, since the close itself can come much later. */
  #closing(frame: ClosingFrame): void {
    this.#transport.closing();
    if (!this.#stopped) this.#ended(frame.code, frame);
  }

  /** A socket the room closed, with this code: stop for good, or come back. */
  #ended(code: number, closing: ClosingFrame | null): void {
    const final = finalRefusal(code);
    // An expired token is final only when there is no way to get another.
    if (final !== undefined && !(code === CLOSE.expired && typeof this.#options.token === "function")) {
      // Coming back by itself would undo what the room meant.
      this.#stop(closing === null ? final : { ...final, message: closing.message, ...(closing.until !== undefined && { until: closing.until }) });
      return;
    }
    this.#transport.retry(closing?.message ?? closeWords(code));
  }

  #stop(refusal: Refusal | null): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#stopReason = refusal;
    this.#transport.stop();
    this.#read.stop();
    this.#outbox.stop(this.#stoppedError());
    if (refusal !== null) this.#events.emit("refused", { refusal, retryInMs: null });
    this.#setState("closed");
  }

  #stoppedError(): ChatError {
    const reason = this.#stopReason;
    return reason === null ? new ChatError("closed", "the session was closed") : new ChatError(reason.code, reason.message, reason.retryAfterMs);
  }
}
