import {
  lastPosition,
  positionOf,
  type ChangeFrame,
  type ErrorBody,
  type ErrorFrame,
  type HistoryFrame,
  type MessageFrame,
  type ModeratedFrame,
  type PresenceFrame,
  type Refusal,
  type SequenceFrame,
  type ServerFrame,
  type TickFrame,
  type UsersFrame,
  type WelcomeFrame,
} from "../protocol";
import { randomHex } from "../names";
import { backoffMs } from "./backoff";

export type ConnectionState = "connecting" | "open" | "waiting";


/** What a session tells the page; the page only renders. */
export interface ChatView {
  status(state: ConnectionState, retryInMs?: number): void;
  welcome(frame: WelcomeFrame): void;
  /** Messages to add as they are now, oldest first; after a `reset`, the page drops what it showed before. */
  history(messages: MessageFrame[], notice: "gap" | "reset" | null): void;
  /** The room would not let this page in: for good (`retryInMs` null), or for now. */
  refused(refusal: Refusal, retryInMs: number | null): void;
  message(frame: MessageFrame): void;
  /** A message shown earlier was edited or deleted. */
  changed(frame: ChangeFrame): void;
  /** Apply by user id: a join of someone listed, or a leave of someone not, changes nothing. */
  presence(frame: PresenceFrame): void;
  /** A page of the user list: the first replaces the list, a later one (`next`) continues it. */
  users(frame: UsersFrame, next: boolean): void;
  tick(frame: TickFrame): void;
  /** A message the user sent that the room has not acknowledged yet. */
  pending(id: string, text: string): void;
  /** The room stored it as `seq` (the `message` frame for it came just before). */
  acked(id: string, seq: number): void;
  /** The room refused it; it was not stored. `retry(id)` sends it again. */
  failed(id: string, error: ErrorFrame): void;
  error(error: ErrorFrame): void;
  /** A moderation this page asked for was done. */
  moderated(frame: ModeratedFrame): void;
}

export interface SessionOptions {
  /** `ws:` or `wss:` URL of the room, without query. */
  url: string;
  /** Null in a room entered with a token, which names its holder. */
  name: string | null;
  clientId: string;
  /** The `?token=` of a `private-` room, passed on to every connection. */
  token: string | null;
}

/** How often an open socket pings, and how long a pong may take before the socket counts as dead. */
const PING_EVERY_MS = 25_000;
const PONG_WITHIN_MS = 10_000;

/**
 * Closes after which reconnecting cannot help: a moderator removed this
 * person, or their token ran out and the page has no new one.
 */
const FINAL_CLOSES: Record<number, Refusal> = {
  4001: { status: 403, code: "kicked", message: "a moderator removed you from the room" },
  4002: { status: 403, code: "token_expired", message: "your invitation has expired" },
  4003: { status: 403, code: "banned", message: "a moderator banned you from the room" },
};

/**
 * One person's connection to a room, kept alive across drops: it reconnects
 * with backoff, resumes after the last message it has (`since`), and resends
 * messages the room has not acknowledged with their original ids, which the
 * room deduplicates. Frames are answered in order, so the answers to what
 * it sent (an `ack`, `users` or an `error`) are matched to a queue of
 * requests in flight.
 */
export class ChatSession {
  #ws: WebSocket | null = null;
  #open = false;
  #lastSeq = 0;
  /** The history `#lastSeq` counts in, from the last welcome. */
  #epoch: string | null = null;
  #resuming = false;
  /** Until the history is complete, live messages wait here, since they come after what is still to be fetched. */
  #catchingUp = false;
  #held: SequenceFrame[] = [];
  #stopped = false;
  #attempt = 0;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #pingTimer: ReturnType<typeof setInterval> | undefined;
  #pongTimer: ReturnType<typeof setTimeout> | undefined;
  readonly #pending = new Map<string, string>();
  /** Refused messages, kept for `retry` but not resent by themselves. */
  readonly #failed = new Map<string, string>();
  #inFlight: Array<
    { kind: "message"; id: string } | { kind: "who"; after?: string } | { kind: "history"; after: number } | { kind: "moderation" } | { kind: "change" }
  > = [];

  constructor(
    private readonly options: SessionOptions,
    private readonly view: ChatView,
  ) {}

  start(): void {
    addEventListener("online", () => this.#reconnectNow());
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") this.#reconnectNow();
    });
    this.#connect();
  }

  send(text: string): void {
    const id = randomHex(16);
    this.#pending.set(id, text);
    this.view.pending(id, text);
    this.#transmit(id);
  }

  retry(id: string): void {
    const text = this.#failed.get(id);
    if (text === undefined) return;
    this.#failed.delete(id);
    this.#pending.set(id, text);
    this.view.pending(id, text);
    this.#transmit(id);
  }

  /** A moderator's kick, ban or mute of the user with this id; the room answers with `moderated` or an error. */
  moderate(action: "kick" | "ban" | "mute", user: string, seconds?: number): void {
    if (!this.#open) return;
    this.#inFlight.push({ kind: "moderation" });
    this.#ws!.send(JSON.stringify(seconds === undefined ? { type: action, user } : { type: action, user, seconds }));
  }

  /** Replaces the text of one's own message `seq`; everyone, this page included, gets the edit. */
  edit(seq: number, text: string): void {
    this.#change({ type: "edit", seq, text });
  }

  /** Deletes one's own message `seq`, or for a moderator anyone's. */
  deleteMessage(seq: number): void {
    this.#change({ type: "delete", seq });
  }

  /** An edit or delete is sent once, while connected: it is not worth resending a minute later. */
  #change(frame: { type: "edit"; seq: number; text: string } | { type: "delete"; seq: number }): void {
    if (!this.#open) return;
    this.#inFlight.push({ kind: "change" });
    this.#ws!.send(JSON.stringify({ ...frame, id: randomHex(16) }));
  }

  /** Asks for the page of the user list after the user with this id. */
  moreUsers(after: string): void {
    if (!this.#open) return;
    this.#inFlight.push({ kind: "who", after });
    this.#ws!.send(JSON.stringify({ type: "who", after }));
  }

  #transmit(id: string): void {
    const text = this.#pending.get(id);
    if (text === undefined || !this.#open) return;
    this.#inFlight.push({ kind: "message", id });
    this.#ws!.send(JSON.stringify({ type: "message", text, id }));
  }

  #connect(): void {
    clearTimeout(this.#retryTimer);
    const url = new URL(this.options.url);
    if (this.options.name !== null) url.searchParams.set("name", this.options.name);
    if (this.options.token !== null) url.searchParams.set("token", this.options.token);
    url.searchParams.set("client", this.options.clientId);
    if (this.#resuming) {
      url.searchParams.set("since", String(this.#lastSeq));
      if (this.#epoch !== null) url.searchParams.set("epoch", this.#epoch);
    }
    this.view.status("connecting");
    const ws = new WebSocket(url);
    this.#ws = ws;
    this.#catchingUp = true;
    ws.addEventListener("message", (event) => this.#receive(String(event.data)));
    ws.addEventListener("close", (event) => void this.#closed(ws, event.code));
  }

  #receive(data: string): void {
    if (data === "pong") {
      clearTimeout(this.#pongTimer);
      return;
    }
    const frame = JSON.parse(data) as ServerFrame;
    switch (frame.type) {
      case "welcome":
        this.#open = true;
        this.#attempt = 0;
        this.#inFlight = [];
        this.#epoch = frame.epoch;
        this.view.status("open");
        this.view.welcome(frame);
        return;
      case "history":
        // The first one follows the welcome; the rest answer requests for more.
        if (this.#inFlight[0]?.kind === "history") this.#inFlight.shift();
        this.#history(frame);
        return;
      case "message":
      case "edit":
      case "delete":
        if (this.#catchingUp) this.#held.push(frame);
        else this.#deliver(frame);
        return;
      case "ack":
        if (this.#inFlight.shift()?.kind === "change") return;
        this.#pending.delete(frame.id);
        this.view.acked(frame.id, frame.seq);
        return;
      case "users": {
        const request = this.#inFlight.shift();
        this.view.users(frame, request?.kind === "who" && request.after !== undefined);
        return;
      }
      case "error": {
        const request = this.#inFlight.shift();
        if (request?.kind === "history") {
          // Live messages wait for the rest of the history: ask again when the room says.
          const ws = this.#ws;
          setTimeout(() => {
            if (ws === this.#ws && this.#open) this.#requestHistory(request.after);
          }, frame.retryAfterMs ?? 1000);
          return;
        }
        if (request?.kind !== "message") {
          this.view.error(frame);
          return;
        }
        const text = this.#pending.get(request.id);
        this.#pending.delete(request.id);
        if (text !== undefined) this.#failed.set(request.id, text);
        this.view.failed(request.id, frame);
        return;
      }
      case "presence":
        this.view.presence(frame);
        return;
      case "tick":
        this.view.tick(frame);
        return;
      case "moderated":
        this.#inFlight.shift();
        this.view.moderated(frame);
        return;
    }
  }

  #deliver(frame: SequenceFrame): void {
    const position = positionOf(frame);
    if (position <= this.#lastSeq) return;
    this.#lastSeq = position;
    if (frame.type === "message") this.view.message(frame);
    else this.view.changed(frame);
  }

  /**
   * One history frame. A long one comes in pages: each asks for the next,
   * and what arrived live meanwhile is shown once the pages have caught up
   * with it, each seq once. A last page covers the room's whole sequence up
   * to its `lastSeq`: what it does not list was a change already applied to
   * a message it does.
   */
  #history(frame: HistoryFrame): void {
    const { messages, changes, gap, reset, more, lastSeq } = frame;
    if (reset) this.#lastSeq = 0;
    const fresh = messages.filter((m) => m.seq > this.#lastSeq);
    const news = changes.filter((c) => c.change > this.#lastSeq);
    this.view.history(fresh, reset ? "reset" : gap ? "gap" : null);
    for (const change of news) this.view.changed(change);
    if (more) {
      this.#lastSeq = Math.max(this.#lastSeq, lastPosition(frame));
      this.#requestHistory(this.#lastSeq);
      return;
    }
    this.#lastSeq = Math.max(this.#lastSeq, lastSeq);
    this.#catchingUp = false;
    for (const frame of this.#held.splice(0)) this.#deliver(frame);
    if (this.#resuming) {
      // The welcome already carried the user list; asking again confirms it after the gap.
      this.#inFlight.push({ kind: "who" });
      this.#ws!.send(JSON.stringify({ type: "who" }));
    }
    this.#resuming = true;
    for (const [id, text] of this.#pending) {
      this.view.pending(id, text);
      this.#transmit(id);
    }
    this.#startPinging();
  }

  #requestHistory(after: number): void {
    this.#inFlight.push({ kind: "history", after });
    this.#ws!.send(JSON.stringify({ type: "history", after }));
  }

  async #closed(ws: WebSocket, code?: number): Promise<void> {
    if (ws !== this.#ws) return;
    const wasOpen = this.#open;
    this.#ws = null;
    this.#open = false;
    this.#inFlight = [];
    this.#held = [];
    this.#stopPinging();
    const final = code === undefined ? undefined : FINAL_CLOSES[code];
    if (final !== undefined) {
      // Coming back by itself would undo what the room meant.
      this.#stopped = true;
      this.view.refused(final, null);
      return;
    }
    // A refused upgrade tells a browser nothing: ask the room why, over HTTP.
    const refusal = wasOpen ? null : await whyRefused(new URL(ws.url));
    // Back online meanwhile, say, and already reconnecting.
    if (this.#ws !== null) return;
    if (refusal !== null && refusal.status >= 400 && refusal.status < 500 && refusal.status !== 429) {
      // A bad name, a missing or expired token: trying again cannot help.
      this.#stopped = true;
      this.view.refused(refusal, null);
      return;
    }
    const delay = Math.max(backoffMs(this.#attempt++), refusal?.retryAfterMs ?? 0);
    if (refusal !== null) this.view.refused(refusal, delay);
    else this.view.status("waiting", delay);
    this.#retryTimer = setTimeout(() => this.#connect(), delay);
  }

  /** Back online or back on screen: no point waiting out the backoff. */
  #reconnectNow(): void {
    if (this.#ws !== null || this.#stopped) return;
    this.#attempt = 0;
    this.#connect();
  }

  #startPinging(): void {
    this.#stopPinging();
    this.#pingTimer = setInterval(() => {
      if (!this.#open) return;
      this.#ws!.send("ping");
      this.#pongTimer = setTimeout(() => this.#drop(), PONG_WITHIN_MS);
    }, PING_EVERY_MS);
  }

  #stopPinging(): void {
    clearInterval(this.#pingTimer);
    clearTimeout(this.#pongTimer);
  }

  /** A socket that stopped answering pings may never fire `close`: give up on it now. */
  #drop(): void {
    const ws = this.#ws;
    if (ws === null) return;
    void this.#closed(ws);
    ws.close();
  }
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
