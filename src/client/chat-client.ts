/**
 * `edge-chat/client`: a lossless session with one chat room, for any
 * JavaScript runtime with `WebSocket` and `fetch` (browsers, Node 22 and
 * later, Workers, Deno). It reconnects with backoff and jitter, resumes
 * after the last entry it has, resends unacknowledged messages under their
 * ids (which the room deduplicates), paces what it sends to the room's rate
 * limit, and hands the app each message once, in `seq` order, however often
 * the connection drops. docs/protocol.md describes the frames it speaks.
 */

import { exceedsBytes } from "../protocol";
import { randomHex } from "../protocol/names";
import {
  CLOSE,
  lastPosition,
  positionOf,
  SUBPROTOCOL,
  TOKEN_SUBPROTOCOL_PREFIX,
  type AckFrame,
  type ChangeFrame,
  type ClientFrame,
  type ClosingFrame,
  type ErrorBody,
  type ErrorFrame,
  type HistoryFrame,
  type Limits,
  type MessageFrame,
  type ModeratedFrame,
  type PresenceFrame,
  type Refusal,
  type RenamedFrame,
  type RenewedFrame,
  type Sanction,
  type SequenceFrame,
  type ServerFrame,
  type TickFrame,
  type User,
  type UsersFrame,
  type WelcomeFrame,
} from "../protocol";
import { backoffMs } from "./backoff";
import { Pacer } from "./pacer";

export type * from "../protocol";
/** A frame in the words of the room's text format: `bob entered the chat room.`, `Done: eve was banned until …`. */
export { toText } from "../protocol";

export interface ChatClientOptions {
  /** The room's WebSocket URL, such as `ws://127.0.0.1:8787/rooms/lobby`; its query is replaced. */
  url: string;
  /** The display name, unless a token names its holder. */
  name?: string;
  /**
   * A token (JWT) for the room, or a function that returns one, which is
   * called before each connection: a short-lived token stays fresh, and a
   * socket closed for an expired token comes back with a new one. It goes
   * to the room as a WebSocket subprotocol, and as `Authorization: Bearer`
   * when the client asks why it was refused: never in a URL, which logs keep.
   */
  token?: string | (() => string | Promise<string>);
  /**
   * A stable, unguessable id for this client (`?client=`). Message ids are
   * deduplicated per client id, and it makes you the author of your
   * messages across connections. Default: a new random one per client.
   */
  clientId?: string;
  /** How often an open socket pings the room. Default 25,000 ms. */
  pingEveryMs?: number;
  /** How long a pong may take before the socket counts as dead and is replaced. Default 10,000 ms. */
  pongWithinMs?: number;
}

/**
 * `connecting` until the room has welcomed the client and it has caught up
 * with the history; `open` while live; `waiting` to reconnect; `closed`
 * for good, by `close()` or by a refusal that retrying cannot fix.
 */
export type ConnectionState = "connecting" | "open" | "waiting" | "closed";

/** What each event hands its listeners. */
export interface ChatEvents {
  /** With `waiting`: how long until the next attempt, and why the last connection ended or failed, in words. */
  state: { state: ConnectionState; retryInMs?: number; reason?: string };
  welcome: WelcomeFrame;
  /** Each message once, in `seq` order, the history's included, as it is when it arrives. */
  message: MessageFrame;
  /** An edit or delete of a message delivered before. */
  change: ChangeFrame;
  /** The room's history was reset: forget the messages shown, the next ones start a new history. */
  reset: void;
  /** Some messages missed while away are no longer kept. */
  gap: void;
  presence: PresenceFrame;
  tick: TickFrame;
  ack: AckFrame;
  /** Every error frame, answered request or not. */
  error: ErrorFrame;
  /**
   * The room would not let this client in, or ended its session: for good
   * (`retryInMs` null, and the state is `closed`), or for now. A ban's
   * refusal says until when, when the room said.
   */
  refused: { refusal: Refusal; retryInMs: number | null };
  /** The answers to `who`, `rename`, `renew` and `moderate`, also as events. */
  renewed: RenewedFrame;
  users: UsersFrame;
  renamed: RenamedFrame;
  moderated: ModeratedFrame;
}

/** Why a request failed: the room's error code and words, and for `auth_unavailable` when to retry. */
export class ChatError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = "ChatError";
  }
}

/** The close code a WebSocket reports for a connection that ended without a close frame. */
const ABNORMAL_CLOSURE = 1006;
const PING_EVERY_MS = 25_000;
const PONG_WITHIN_MS = 10_000;
/** How long to wait before asking again for what the room refused with a wait but did not say how long. */
const RETRY_MS = 1_000;

/**
 * Closes after which reconnecting cannot help: a moderator removed this
 * person, the room closed a flood, or the token ran out and there is no way
 * to get another.
 */
const FINAL_CLOSES: Partial<Record<number, Refusal>> = {
  [CLOSE.flood]: { status: 429, code: "flooding", message: "the room closed this connection for sending too fast" },
  [CLOSE.kicked]: { status: 403, code: "kicked", message: "a moderator removed you from the room" },
  [CLOSE.expired]: { status: 403, code: "token_expired", message: "your token has expired" },
  [CLOSE.banned]: { status: 403, code: "banned", message: "a moderator banned you from the room" },
};

/** Why a socket that was in ended, in words, when no `closing` frame said. */
function closeWords(code: number): string {
  switch (code) {
    case CLOSE.timeout:
      return "the room heard nothing from this connection for too long";
    case CLOSE.tryAgain:
      return "the room asked to reconnect";
    default:
      return `the connection dropped (code ${code})`;
  }
}

type Settle = { resolve(frame: ServerFrame): void; reject(error: ChatError): void };

/** A message, edit or delete: stored in the room's sequence, resent until answered. */
interface Write {
  id: string;
  frame: ClientFrame;
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
  frame: ClientFrame;
  order: number;
  settle: Settle;
}

/** A frame on the wire that the room owes an answer. */
type Sent = { kind: "write"; write: Write } | { kind: "ask"; ask: Ask } | { kind: "history"; after: number };

/** The next frame to send, once `at` has come; `send` says whether it went, or was refused here. */
type Next = { at: number; send(): boolean };

type Listener = (value: never) => void;

/** A browser's window and document, which other runtimes lack. */
const page = globalThis as { window?: EventTarget; document?: EventTarget & { visibilityState: string } };

/**
 * One client's session with one room. Every request carries an `id`, and
 * the room's answer carries it back; an answer without one (a frame the
 * room refused before reading it) answers the oldest request on the wire,
 * since the room answers a socket's frames in the order it reads them.
 *
 * Messages, edits and deletes go one at a time, each once the last is
 * answered, so that the room stores them in the order they were asked
 * for, even when it makes one wait; every frame also waits for a token of
 * the client's copy of the room's rate limit (`Pacer`).
 */
export class ChatClient {
  readonly #options: ChatClientOptions;
  readonly #clientId: string;
  /** The name to join with: the option's, until a rename. */
  #name: string | undefined;
  readonly #listeners = new Map<keyof ChatEvents, Set<Listener>>();
  #ws: WebSocket | null = null;
  /** The token the current socket offered, for asking why it was refused. */
  #token: string | undefined;
  /** Getting a token for the next socket. */
  #opening = false;
  #state: ConnectionState = "connecting";
  /** Welcomed on the current socket. */
  #welcomed = false;
  /** Caught up with the history on the current socket: new frames go out, live ones come in. */
  #live = false;
  #you: User | null = null;
  #limits: Limits | null = null;
  /** The last number of the room's sequence this client has: everything up to it is delivered. */
  #lastSeq = 0;
  /** The history `#lastSeq` counts in. */
  #epoch: string | null = null;
  #resuming = false;
  /** Live frames that arrived while history pages were still coming: they come after those. */
  #held: SequenceFrame[] = [];
  #stopped = false;
  /** Why the session stopped, when the room ended it. */
  #stopReason: Refusal | null = null;
  #attempt = 0;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #pingTimer: ReturnType<typeof setInterval> | undefined;
  #pongTimer: ReturnType<typeof setTimeout> | undefined;
  /** Frames received: any frame after a ping shows the socket is alive. */
  #heard = 0;
  readonly #pacer = new Pacer();
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
  /** What the current socket owes answers to, by id, oldest first. */
  readonly #inFlight = new Map<string, Sent>();
  readonly #wake = () => this.wake();
  readonly #wakeIfVisible = () => {
    if (page.document?.visibilityState === "visible") this.wake();
  };

  constructor(options: ChatClientOptions) {
    this.#options = options;
    this.#clientId = options.clientId ?? randomHex(16);
    this.#name = options.name;
    // In a browser, the network or the tab coming back is worth more than the backoff's next attempt.
    page.window?.addEventListener("online", this.#wake);
    page.document?.addEventListener("visibilitychange", this.#wakeIfVisible);
    void this.#connect();
  }

  get state(): ConnectionState {
    return this.#state;
  }

  /** Who the room says this client is, from the last welcome. */
  get you(): User | null {
    return this.#you;
  }

  /** The last number of the room's sequence delivered to the app. */
  get lastSeq(): number {
    return this.#lastSeq;
  }

  /** Messages sent and not yet acknowledged, oldest first: they are resent after each reconnect. */
  get pending(): Array<{ id: string; text: string }> {
    return Array.from(this.#writes.values()).flatMap(({ id, text }) => (text === undefined ? [] : [{ id, text }]));
  }

  /** Listens for an event; returns the function that stops listening. */
  on<K extends keyof ChatEvents>(event: K, listener: (value: ChatEvents[K]) => void): () => void {
    let set = this.#listeners.get(event);
    if (set === undefined) this.#listeners.set(event, (set = new Set()));
    set.add(listener);
    return () => void set.delete(listener);
  }

  /**
   * Sends a message; resolves with its `seq` once the room has stored it,
   * rejects with a `ChatError` if the room refuses it. Until then it is
   * resent after every reconnect, and after any wait the room asks for,
   * under the same id, which the room deduplicates: a rate limit delays a
   * message but never refuses it. Messages are stored in the order they
   * were sent. Sending again with the `id` of a refused message retries it.
   */
  send(text: string, options: { id?: string } = {}): Promise<number> {
    const id = options.id ?? randomHex(16);
    return this.#write({ type: "message", text, id }, text);
  }

  /** A page of the user list: the first, or the one after the user with id `after`. */
  async who(after?: string): Promise<UsersFrame> {
    return (await this.#request(after === undefined ? { type: "who" } : { type: "who", after })) as UsersFrame;
  }

  /** Changes this client's display name; resolves with who it now is. */
  async rename(name: string): Promise<User> {
    const answer = (await this.#request({ type: "rename", name })) as RenamedFrame;
    this.#you = answer.user;
    // Reconnecting under the old name would undo it.
    this.#name = answer.user.name;
    return answer.user;
  }

  /** Replaces the text of one's own message `seq`; resolves with the edit's own number. Sent like a message, in order with them. */
  edit(seq: number, text: string): Promise<number> {
    return this.#write({ type: "edit", seq, text, id: randomHex(16) });
  }

  /** Deletes one's own message `seq`, or for a moderator anyone's; resolves with the delete's own number. Sent like a message. */
  delete(seq: number): Promise<number> {
    return this.#write({ type: "delete", seq, id: randomHex(16) });
  }

  /** A moderator's kick, ban, unban, mute or unmute of the user with this id. */
  async moderate(action: Sanction, user: string, seconds?: number): Promise<ModeratedFrame> {
    const frame = seconds === undefined ? { type: action, user } : { type: action, user, seconds };
    return (await this.#request(frame)) as ModeratedFrame;
  }

  /**
   * Renews the token this socket joined with, before it expires, without
   * reconnecting: a token for the same person. Resolves with its expiry
   * (seconds since the epoch). When the room cannot check tokens for now,
   * it rejects with `auth_unavailable` and `retryAfterMs`: renew again
   * after that. (The client does not retry by itself: the app chose this
   * token, and may have a fresher one by then.)
   */
  async renew(token: string): Promise<number> {
    return ((await this.#request({ type: "token", token })) as RenewedFrame).exp;
  }

  /**
   * A hint that the network or the screen came back: reconnect now instead
   * of waiting out the backoff, or check at once that an open socket still
   * answers (one that slept with its device may be dead without knowing).
   * In a browser the client takes this hint itself, on `online` and on
   * `visibilitychange` to visible.
   */
  wake(): void {
    if (this.#stopped || this.#opening) return;
    if (this.#ws === null) {
      this.#attempt = 0;
      void this.#connect();
    } else if (this.#welcomed) {
      this.#ping();
    }
  }

  /** Ends the session: the socket closes, and messages not yet acknowledged are rejected. */
  close(): void {
    this.#stop(null);
  }

  #emit<K extends keyof ChatEvents>(event: K, value: ChatEvents[K]): void {
    for (const listener of this.#listeners.get(event) ?? []) (listener as (value: ChatEvents[K]) => void)(value);
  }

  #setState(state: ConnectionState, retryInMs?: number, reason?: string): void {
    this.#state = state;
    this.#emit("state", { state, ...(retryInMs !== undefined && { retryInMs }), ...(reason !== undefined && { reason }) });
  }

  #write(frame: ClientFrame & { id: string }, text?: string): Promise<number> {
    if (this.#stopped) return Promise.reject(this.#stoppedError());
    return new Promise((resolve, reject) => {
      this.#writes.set(frame.id, { id: frame.id, frame, text, order: this.#order++, resolve, reject });
      this.#pump();
    });
  }

  /** Sends a request now, or once live; resolves with its answer, rejects with its error or if the connection drops first. */
  #request(frame: ClientFrame): Promise<ServerFrame> {
    if (this.#stopped) return Promise.reject(this.#stoppedError());
    return new Promise((resolve, reject) => {
      const id = randomHex(16);
      this.#asks.push({ id, frame: { ...frame, id }, order: this.#order++, settle: { resolve, reject } });
      this.#pump();
    });
  }

  /** Sends what may go now, and sets a timer for what must wait. */
  #pump(): void {
    clearTimeout(this.#pumpTimer);
    this.#pumpTimer = undefined;
    for (;;) {
      const now = Date.now();
      const next = this.#next(now);
      if (next === null) return;
      const at = Math.max(next.at, this.#pacer.readyAt(now));
      if (at > now) {
        this.#pumpTimer = setTimeout(() => this.#pump(), at - now);
        return;
      }
      if (next.send()) this.#pacer.take(now);
    }
  }

  /** What to send next: a history page while catching up; then writes and requests in the order they were made. */
  #next(now: number): Next | null {
    if (this.#ws === null || !this.#welcomed) return null;
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
    this.#inFlight.set(write.id, { kind: "write", write });
    this.#ws!.send(JSON.stringify(write.frame));
    return true;
  }

  #ask(ask: Ask): boolean {
    this.#asks.shift();
    const tooLarge = this.#tooLarge(ask.frame);
    if (tooLarge !== null) {
      ask.settle.reject(tooLarge);
      return false;
    }
    this.#inFlight.set(ask.id, { kind: "ask", ask });
    this.#ws!.send(JSON.stringify(ask.frame));
    return true;
  }

  #requestHistory(after: number): void {
    this.#historyAfter = null;
    const id = randomHex(16);
    this.#inFlight.set(id, { kind: "history", after });
    this.#ws!.send(JSON.stringify({ type: "history", after, id }));
  }

  /**
   * What an answer answers: the request with its id; without one, the
   * oldest on the wire that such an answer can answer (`only`).
   */
  #answered(frame: { id?: string }, only?: Sent["kind"]): Sent | undefined {
    let id = frame.id;
    if (id === undefined) {
      for (const [key, sent] of this.#inFlight) {
        if (only === undefined || sent.kind === only) {
          id = key;
          break;
        }
      }
    }
    if (id === undefined) return undefined;
    const sent = this.#inFlight.get(id);
    this.#inFlight.delete(id);
    return sent;
  }

  async #connect(): Promise<void> {
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    const url = new URL(this.#options.url);
    url.search = "";
    if (this.#name !== undefined) url.searchParams.set("name", this.#name);
    url.searchParams.set("client", this.#clientId);
    if (this.#resuming) {
      url.searchParams.set("since", String(this.#lastSeq));
      if (this.#epoch !== null) url.searchParams.set("epoch", this.#epoch);
    }
    this.#setState("connecting");
    this.#opening = true;
    let token: string | undefined;
    try {
      token = typeof this.#options.token === "function" ? await this.#options.token() : this.#options.token;
    } catch (error) {
      // No token now: try again later, as after a failed connection.
      this.#opening = false;
      if (!this.#stopped) this.#retry(null, `could not get a token: ${error instanceof Error ? error.message : String(error)}`);
      return;
    }
    this.#opening = false;
    if (this.#stopped) return;
    this.#token = token;
    const ws = token === undefined ? new WebSocket(url) : new WebSocket(url, [SUBPROTOCOL, `${TOKEN_SUBPROTOCOL_PREFIX}${token}`]);
    this.#ws = ws;
    ws.addEventListener("message", (event) => {
      if (ws === this.#ws) this.#receive(String(event.data));
    });
    ws.addEventListener("close", (event) => void this.#closed(ws, event.code));
  }

  #receive(data: string): void {
    this.#heard++;
    if (data === "pong") {
      clearTimeout(this.#pongTimer);
      return;
    }
    let frame: ServerFrame;
    try {
      frame = JSON.parse(data) as ServerFrame;
    } catch {
      return;
    }
    switch (frame.type) {
      case "welcome":
        this.#welcomed = true;
        this.#attempt = 0;
        this.#epoch = frame.epoch;
        this.#you = frame.you;
        this.#limits = frame.limits;
        this.#pacer.reset(frame.limits.framesPer10s, Date.now());
        this.#emit("welcome", frame);
        return;
      case "history":
        // The first one follows the welcome; the rest answer requests for more.
        this.#answered(frame, "history");
        this.#history(frame);
        return;
      case "message":
      case "edit":
      case "delete":
        if (this.#live) this.#deliver(frame);
        else this.#held.push(frame);
        return;
      case "ack": {
        const sent = this.#answered(frame);
        this.#emit("ack", frame);
        if (sent?.kind === "write") this.#stored(sent.write, frame.seq);
        return;
      }
      case "error":
        this.#error(frame);
        return;
      case "users":
      case "renamed":
      case "renewed":
      case "moderated": {
        const sent = this.#answered(frame, "ask");
        this.#emit(frame.type, frame as never);
        if (sent?.kind === "ask") sent.ask.settle.resolve(frame);
        this.#pump();
        return;
      }
      case "closing":
        this.#closing(frame);
        return;
      case "presence":
        this.#emit("presence", frame);
        return;
      case "tick":
        this.#emit("tick", frame);
        return;
    }
  }

  #stored(write: Write, seq: number): void {
    this.#writes.delete(write.id);
    this.#writing = false;
    write.resolve(seq);
    this.#pump();
  }

  #error(frame: ErrorFrame): void {
    this.#emit("error", frame);
    const sent = this.#answered(frame);
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
      else sent.ask.settle.reject(error);
    } else if (sent?.kind === "history") {
      // Live frames wait for the rest of the history: ask again when the room says.
      this.#historyAfter = sent.after;
      this.#historyNotBefore = now + (frame.retryAfterMs ?? RETRY_MS);
    }
    this.#pump();
  }

  #deliver(frame: SequenceFrame): void {
    const position = positionOf(frame);
    if (position <= this.#lastSeq) return;
    this.#lastSeq = position;
    if (frame.type === "message") this.#emit("message", frame);
    else this.#emit("change", frame);
  }

  /**
   * One history frame. A long one comes in pages: each asks for the next,
   * and what arrived live meanwhile is delivered once the pages have caught
   * up with it, each number once. A last page covers the room's sequence up
   * to its `lastSeq`: what it does not list was a change already applied to
   * a message it does.
   */
  #history(frame: HistoryFrame): void {
    const { messages, changes, gap, reset, more, lastSeq } = frame;
    if (reset) {
      this.#lastSeq = 0;
      this.#emit("reset", undefined);
    } else if (gap) {
      this.#emit("gap", undefined);
    }
    const cursor = this.#lastSeq;
    for (const message of messages) {
      if (message.seq > cursor) this.#emit("message", message);
    }
    for (const change of changes) {
      if (change.change > cursor) this.#emit("change", change);
    }
    if (more) {
      this.#lastSeq = Math.max(cursor, lastPosition(frame));
      this.#historyAfter = this.#lastSeq;
      this.#historyNotBefore = 0;
      this.#pump();
      return;
    }
    this.#lastSeq = Math.max(cursor, lastSeq);
    this.#live = true;
    this.#resuming = true;
    for (const held of this.#held.splice(0)) this.#deliver(held);
    this.#startPinging();
    this.#setState("open");
    this.#pump();
  }

  /** The room said it is closing this socket, and why: act on it now, since the close itself can come much later. */
  #closing(frame: ClosingFrame): void {
    const ws = this.#ws!;
    this.#drop();
    try {
      ws.close(1000, "closing");
    } catch {
      // Already closing.
    }
    if (!this.#stopped) this.#ended(frame.code, frame);
  }

  async #closed(ws: WebSocket, code: number): Promise<void> {
    if (ws !== this.#ws) return;
    const welcomed = this.#welcomed;
    const token = this.#token;
    this.#drop();
    if (this.#stopped) return;
    if (welcomed || FINAL_CLOSES[code] !== undefined) return this.#ended(code, null);
    // A refused upgrade says nothing to a WebSocket client: ask the room why, over HTTP.
    const why = await whyRefused(new URL(ws.url), token, closeWords(code));
    // Woken meanwhile, and already reconnecting; or closed.
    if (this.#ws !== null || this.#opening || this.#stopped) return;
    if ("refusal" in why) this.#retry(why.refusal, why.refusal.message);
    else this.#retry(null, why.reason);
  }

  /** A socket the room closed, with this code: stop for good, or come back. */
  #ended(code: number, closing: ClosingFrame | null): void {
    const final = FINAL_CLOSES[code];
    // An expired token is final only when there is no way to get another.
    if (final !== undefined && !(code === CLOSE.expired && typeof this.#options.token === "function")) {
      // Coming back by itself would undo what the room meant.
      return this.#stop(closing === null ? final : { ...final, message: closing.message, ...(closing.until !== undefined && { until: closing.until }) });
    }
    this.#retry(null, closing?.message ?? closeWords(code));
  }

  /** Waits out the backoff, or stops for good after a refusal that retrying cannot fix. */
  #retry(refusal: Refusal | null, reason: string): void {
    if (refusal !== null && !retryable(refusal)) return this.#stop(refusal);
    const delay = Math.max(backoffMs(this.#attempt++), refusal?.retryAfterMs ?? 0);
    if (refusal !== null) this.#emit("refused", { refusal, retryInMs: delay });
    this.#setState("waiting", delay, reason);
    this.#retryTimer = setTimeout(() => void this.#connect(), delay);
  }

  /** Forgets the current socket: what was asked on it will not be answered, but writes are sent again on the next. */
  #drop(): void {
    this.#ws = null;
    this.#welcomed = false;
    this.#live = false;
    this.#held = [];
    this.#writing = false;
    this.#historyAfter = null;
    clearTimeout(this.#pumpTimer);
    this.#stopPinging();
    const lost = new ChatError("connection_lost", "the connection dropped before the room answered");
    const sent = [...this.#inFlight.values()];
    this.#inFlight.clear();
    for (const s of sent) if (s.kind === "ask") s.ask.settle.reject(lost);
  }

  #stop(refusal: Refusal | null): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#stopReason = refusal;
    clearTimeout(this.#retryTimer);
    page.window?.removeEventListener("online", this.#wake);
    page.document?.removeEventListener("visibilitychange", this.#wakeIfVisible);
    const ws = this.#ws;
    this.#drop();
    if (ws !== null) {
      try {
        ws.close(1000, "bye");
      } catch {
        // Already closing.
      }
    }
    const error = this.#stoppedError();
    const writes = [...this.#writes.values()];
    this.#writes.clear();
    for (const write of writes) write.reject(error);
    for (const ask of this.#asks.splice(0)) ask.settle.reject(error);
    if (refusal !== null) this.#emit("refused", { refusal, retryInMs: null });
    this.#setState("closed");
  }

  #stoppedError(): ChatError {
    const reason = this.#stopReason;
    return reason === null ? new ChatError("closed", "the session was closed") : new ChatError(reason.code, reason.message, reason.retryAfterMs);
  }

  #startPinging(): void {
    this.#stopPinging();
    this.#pingTimer = setInterval(() => this.#ping(), this.#options.pingEveryMs ?? PING_EVERY_MS);
  }

  #ping(): void {
    const ws = this.#ws;
    if (ws === null || !this.#welcomed) return;
    const heard = this.#heard;
    ws.send("ping");
    clearTimeout(this.#pongTimer);
    this.#pongTimer = setTimeout(() => {
      // A busy event loop may not have read a pong that came in time: give it one more turn.
      setTimeout(() => {
        if (ws === this.#ws && this.#heard === heard) this.#giveUp(ws);
      }, 0);
    }, this.#options.pongWithinMs ?? PONG_WITHIN_MS);
  }

  #stopPinging(): void {
    clearInterval(this.#pingTimer);
    clearTimeout(this.#pongTimer);
  }

  /** A socket that stopped answering may never fire `close`: replace it now. */
  #giveUp(ws: WebSocket): void {
    void this.#closed(ws, ABNORMAL_CLOSURE);
    try {
      ws.close();
    } catch {
      // Already closing.
    }
  }
}

/**
 * Whether trying again later can help: after too many attempts, a full
 * room, or an identity provider whose keys could not be fetched
 * (`auth_unavailable`), yes; after a bad name or token, a ban, or a server
 * that checks no tokens, no.
 */
function retryable(refusal: Refusal): boolean {
  return refusal.status === 429 || (refusal.status >= 500 && refusal.code !== "auth_not_configured");
}

/**
 * What the room says it would answer this socket's URL with now, with the
 * same token; or, when nothing stands in the way or it cannot be asked,
 * why the connection failed, in words (`dropped` unless the room could not
 * be reached at all).
 */
async function whyRefused(url: URL, token: string | undefined, dropped: string): Promise<{ refusal: Refusal } | { reason: string }> {
  const http = new URL(url);
  http.protocol = url.protocol === "wss:" ? "https:" : "http:";
  const headers: Record<string, string> = { Accept: "application/json" };
  if (token !== undefined) headers.Authorization = `Bearer ${token}`;
  let response: Response;
  try {
    response = await fetch(http, { headers });
  } catch (error) {
    const cause = error instanceof Error && error.cause instanceof Error ? `: ${error.cause.message}` : "";
    return { reason: `cannot reach ${http.host}${cause}` };
  }
  if (response.status === 426) {
    await response.body?.cancel();
    return { reason: dropped };
  }
  try {
    const body = (await response.json()) as Partial<ErrorBody>;
    const { code, message, until } = body;
    if (typeof code !== "string" || typeof message !== "string") return { reason: dropped };
    const retryAfterMs = body.retryAfterMs ?? retryAfterHeader(response);
    const refusal: Refusal = { status: response.status, code, message, ...(retryAfterMs !== undefined && { retryAfterMs }), ...(until !== undefined && { until }) };
    return { refusal };
  } catch {
    return { reason: dropped };
  }
}

/** `Retry-After` in seconds, as milliseconds. */
function retryAfterHeader(response: Response): number | undefined {
  const seconds = Number(response.headers.get("Retry-After") ?? NaN);
  return Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : undefined;
}
