/**
 * `edge-chat/client`: a lossless session with one chat room, for any
 * JavaScript runtime with `WebSocket` and `fetch` (browsers, Node 22 and
 * later, Workers, Deno). It reconnects with backoff and jitter, resumes
 * after the last entry it has, resends unacknowledged messages under their
 * ids (which the room deduplicates), and hands the app each message once,
 * in `seq` order, however often the connection drops. docs/protocol.md
 * describes the frames it speaks.
 */

import { randomHex } from "../names";
import {
  lastPosition,
  positionOf,
  type AckFrame,
  type ChangeFrame,
  type ErrorBody,
  type ErrorFrame,
  type HistoryFrame,
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
   * socket closed for an expired token comes back with a new one.
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
  state: { state: ConnectionState; retryInMs?: number };
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
  /** The room would not let this client in: for good (`retryInMs` null, and the state is `closed`), or for now. */
  refused: { refusal: Refusal; retryInMs: number | null };
  /** The answers to `who`, `rename`, `renew` and `moderate`, also as events. */
  renewed: RenewedFrame;
  users: UsersFrame;
  renamed: RenamedFrame;
  moderated: ModeratedFrame;
}

/** Why a request failed: the room's error code and words, and for `rate_limited` when to retry. */
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

const PING_EVERY_MS = 25_000;
const PONG_WITHIN_MS = 10_000;
/** How often a request for the next history page is retried after the room asked to wait without saying how long. */
const HISTORY_RETRY_MS = 1_000;

/**
 * Closes after which reconnecting cannot help: a moderator removed this
 * person, the room closed a flood, or the token ran out and there is no way
 * to get another.
 */
const FINAL_CLOSES: Record<number, Refusal> = {
  1008: { status: 429, code: "flooding", message: "the room closed this connection for sending too fast" },
  4001: { status: 403, code: "kicked", message: "a moderator removed you from the room" },
  4002: { status: 403, code: "token_expired", message: "your token has expired" },
  4003: { status: 403, code: "banned", message: "a moderator banned you from the room" },
};

type Request =
  | { kind: "message"; id: string }
  | { kind: "history"; after: number }
  | { kind: "answer"; settle: Settle };

type Settle = { resolve(frame: ServerFrame): void; reject(error: ChatError): void };

type Pending = { text: string; resolve(seq: number): void; reject(error: ChatError): void };

type Listener = (value: never) => void;

/**
 * One client's session with one room. Answers come from the room in the
 * order of the frames they answer, so each request waits in a queue for
 * its answer: an `ack`, `users`, `renamed`, `renewed`, `moderated` or an
 * `error`.
 */
export class ChatClient {
  readonly #options: ChatClientOptions;
  readonly #clientId: string;
  /** The name to join with: the option's, until a rename. */
  #name: string | undefined;
  readonly #listeners = new Map<keyof ChatEvents, Set<Listener>>();
  #ws: WebSocket | null = null;
  /** Getting a token for the next socket. */
  #opening = false;
  #state: ConnectionState = "connecting";
  /** Welcomed on the current socket. */
  #welcomed = false;
  /** Caught up with the history on the current socket: new frames go out, live ones come in. */
  #live = false;
  #you: User | null = null;
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
  /** When the last frame arrived: any frame shows the socket is alive. */
  #heardAt = 0;
  readonly #pending = new Map<string, Pending>();
  /** Messages and requests made while not live, in the order they were made, sent once the client is. */
  #queued: Array<{ id: string } | { frame: object; request: Request }> = [];
  #inFlight: Request[] = [];

  constructor(options: ChatClientOptions) {
    this.#options = options;
    this.#clientId = options.clientId ?? randomHex(16);
    this.#name = options.name;
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
    return Array.from(this.#pending, ([id, { text }]) => ({ id, text }));
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
   * resent after every reconnect under the same id, which the room
   * deduplicates. Sending again with the `id` of a refused message retries it.
   */
  send(text: string, options: { id?: string } = {}): Promise<number> {
    const id = options.id ?? randomHex(16);
    if (this.#stopped) return Promise.reject(this.#stoppedError());
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { text, resolve, reject });
      if (this.#live) this.#transmit(id);
      else this.#queued.push({ id });
    });
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

  /** Replaces the text of one's own message `seq`; resolves with the edit's own number. */
  async edit(seq: number, text: string): Promise<number> {
    return ((await this.#request({ type: "edit", seq, text, id: randomHex(16) })) as AckFrame).seq;
  }

  /** Deletes one's own message `seq`, or for a moderator anyone's; resolves with the delete's own number. */
  async delete(seq: number): Promise<number> {
    return ((await this.#request({ type: "delete", seq, id: randomHex(16) })) as AckFrame).seq;
  }

  /** A moderator's kick, ban, unban, mute or unmute of the user with this id. */
  async moderate(action: Sanction, user: string, seconds?: number): Promise<ModeratedFrame> {
    const frame = seconds === undefined ? { type: action, user } : { type: action, user, seconds };
    return (await this.#request(frame)) as ModeratedFrame;
  }

  /**
   * Renews the token this socket joined with, before it expires, without
   * reconnecting: a token for the same person. Resolves with its expiry
   * (seconds since the epoch).
   */
  async renew(token: string): Promise<number> {
    return ((await this.#request({ type: "token", token })) as RenewedFrame).exp;
  }

  /**
   * A hint that the network or the screen came back: reconnect now instead
   * of waiting out the backoff, or check at once that an open socket still
   * answers (one that slept with its device may be dead without knowing).
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

  #setState(state: ConnectionState, retryInMs?: number): void {
    this.#state = state;
    this.#emit("state", retryInMs === undefined ? { state } : { state, retryInMs });
  }

  /** Sends a request now, or once live; resolves with its answer, rejects with its error or if the connection drops first. */
  #request(frame: object): Promise<ServerFrame> {
    if (this.#stopped) return Promise.reject(this.#stoppedError());
    return new Promise((resolve, reject) => {
      const request: Request = { kind: "answer", settle: { resolve, reject } };
      if (this.#live) this.#ask(frame, request);
      else this.#queued.push({ frame, request });
    });
  }

  #ask(frame: object, request: Request): void {
    this.#inFlight.push(request);
    this.#ws!.send(JSON.stringify(frame));
  }

  #transmit(id: string): void {
    const pending = this.#pending.get(id);
    if (pending === undefined) return;
    this.#inFlight.push({ kind: "message", id });
    this.#ws!.send(JSON.stringify({ type: "message", text: pending.text, id }));
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
    } catch {
      // No token now: try again later, as after a failed connection.
      this.#opening = false;
      if (!this.#stopped) this.#retry(null);
      return;
    }
    this.#opening = false;
    if (this.#stopped) return;
    if (token !== undefined) url.searchParams.set("token", token);
    const ws = new WebSocket(url);
    this.#ws = ws;
    ws.addEventListener("message", (event) => {
      if (ws === this.#ws) this.#receive(String(event.data));
    });
    ws.addEventListener("close", (event) => void this.#closed(ws, event.code));
  }

  #receive(data: string): void {
    this.#heardAt = Date.now();
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
        this.#inFlight = [];
        this.#epoch = frame.epoch;
        this.#you = frame.you;
        this.#emit("welcome", frame);
        return;
      case "history":
        // The first one follows the welcome; the rest answer requests for more.
        if (this.#inFlight[0]?.kind === "history") this.#inFlight.shift();
        this.#history(frame);
        return;
      case "message":
      case "edit":
      case "delete":
        if (this.#live) this.#deliver(frame);
        else this.#held.push(frame);
        return;
      case "ack": {
        const request = this.#inFlight.shift();
        this.#emit("ack", frame);
        if (request?.kind === "answer") return request.settle.resolve(frame);
        const pending = this.#pending.get(frame.id);
        this.#pending.delete(frame.id);
        pending?.resolve(frame.seq);
        return;
      }
      case "error":
        this.#error(frame);
        return;
      case "users":
      case "renamed":
      case "renewed":
      case "moderated": {
        const request = this.#inFlight.shift();
        this.#emit(frame.type, frame as never);
        if (request?.kind === "answer") request.settle.resolve(frame);
        return;
      }
      case "presence":
        this.#emit("presence", frame);
        return;
      case "tick":
        this.#emit("tick", frame);
        return;
    }
  }

  #error(frame: ErrorFrame): void {
    this.#emit("error", frame);
    const request = this.#inFlight.shift();
    const error = new ChatError(frame.code, frame.message, frame.retryAfterMs);
    if (request?.kind === "answer") return request.settle.reject(error);
    if (request?.kind === "history") {
      // Live frames wait for the rest of the history: ask again when the room says.
      const ws = this.#ws;
      setTimeout(() => {
        if (ws === this.#ws && this.#welcomed) this.#requestHistory(request.after);
      }, frame.retryAfterMs ?? HISTORY_RETRY_MS);
      return;
    }
    if (request?.kind !== "message") return;
    const pending = this.#pending.get(request.id);
    this.#pending.delete(request.id);
    pending?.reject(error);
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
      this.#requestHistory(this.#lastSeq);
      return;
    }
    this.#lastSeq = Math.max(cursor, lastSeq);
    this.#live = true;
    this.#resuming = true;
    for (const held of this.#held.splice(0)) this.#deliver(held);
    // Messages sent on an earlier socket came before anything made since; then the rest, in order.
    const queued = this.#queued.splice(0);
    const later = new Set(queued.flatMap((q) => ("id" in q ? [q.id] : [])));
    for (const id of this.#pending.keys()) if (!later.has(id)) this.#transmit(id);
    for (const q of queued) {
      if ("id" in q) this.#transmit(q.id);
      else this.#ask(q.frame, q.request);
    }
    this.#startPinging();
    this.#setState("open");
  }

  #requestHistory(after: number): void {
    this.#inFlight.push({ kind: "history", after });
    this.#ws!.send(JSON.stringify({ type: "history", after }));
  }

  async #closed(ws: WebSocket, code: number): Promise<void> {
    if (ws !== this.#ws) return;
    const welcomed = this.#welcomed;
    this.#drop();
    if (this.#stopped) return;
    const final = FINAL_CLOSES[code];
    if (final !== undefined && !(code === 4002 && typeof this.#options.token === "function")) {
      // Coming back by itself would undo what the room meant.
      return this.#stop(final);
    }
    // A refused upgrade says nothing to a WebSocket client: ask the room why, over HTTP.
    const refusal = welcomed ? null : await whyRefused(new URL(ws.url));
    // Woken meanwhile, and already reconnecting; or closed.
    if (this.#ws !== null || this.#opening || this.#stopped) return;
    this.#retry(refusal);
  }

  /** Waits out the backoff, or stops for good after a refusal that retrying cannot fix. */
  #retry(refusal: Refusal | null): void {
    if (refusal !== null && !retryable(refusal)) return this.#stop(refusal);
    const delay = Math.max(backoffMs(this.#attempt++), refusal?.retryAfterMs ?? 0);
    if (refusal !== null) this.#emit("refused", { refusal, retryInMs: delay });
    this.#setState("waiting", delay);
    this.#retryTimer = setTimeout(() => void this.#connect(), delay);
  }

  /** Forgets the current socket: what was asked on it will not be answered. */
  #drop(): void {
    this.#ws = null;
    this.#welcomed = false;
    this.#live = false;
    this.#held = [];
    this.#stopPinging();
    const lost = new ChatError("connection_lost", "the connection dropped before the room answered");
    for (const request of this.#inFlight.splice(0)) {
      if (request.kind === "answer") request.settle.reject(lost);
    }
  }

  #stop(refusal: Refusal | null): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#stopReason = refusal;
    clearTimeout(this.#retryTimer);
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
    for (const pending of this.#pending.values()) pending.reject(error);
    this.#pending.clear();
    for (const q of this.#queued.splice(0)) {
      if ("request" in q && q.request.kind === "answer") q.request.settle.reject(error);
    }
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
    const sentAt = Date.now();
    ws.send("ping");
    clearTimeout(this.#pongTimer);
    this.#pongTimer = setTimeout(() => {
      // A busy event loop may not have read a pong that came in time: give it one more turn.
      setTimeout(() => {
        if (ws === this.#ws && this.#heardAt < sentAt) this.#giveUp(ws);
      }, 0);
    }, this.#options.pongWithinMs ?? PONG_WITHIN_MS);
  }

  #stopPinging(): void {
    clearInterval(this.#pingTimer);
    clearTimeout(this.#pongTimer);
  }

  /** A socket that stopped answering may never fire `close`: replace it now. */
  #giveUp(ws: WebSocket): void {
    void this.#closed(ws, 1006);
    try {
      ws.close();
    } catch {
      // Already closing.
    }
  }
}

/**
 * Whether trying again later can help: after too many attempts or a full
 * room, yes; after a bad name or token, a ban, or a server that checks no
 * tokens, no.
 */
function retryable(refusal: Refusal): boolean {
  return refusal.status === 429 || (refusal.status >= 500 && refusal.code !== "auth_not_configured");
}

/** What the room says it would answer this socket's URL with now; null if it would let it in, or cannot be asked. */
async function whyRefused(url: URL): Promise<Refusal | null> {
  const http = new URL(url);
  http.protocol = url.protocol === "wss:" ? "https:" : "http:";
  try {
    const response = await fetch(http, { headers: { Accept: "application/json" } });
    if (response.status === 426) return null;
    const body = (await response.json()) as Partial<ErrorBody>;
    if (typeof body.code !== "string" || typeof body.message !== "string") return null;
    return { status: response.status, code: body.code, message: body.message, retryAfterMs: body.retryAfterMs };
  } catch {
    return null;
  }
}
