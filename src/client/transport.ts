import { SUBPROTOCOL, TOKEN_SUBPROTOCOL_PREFIX, WEBSOCKET_CLOSE, type ClientFrame, type Refusal, type ServerFrame, type WireFrame } from "../protocol";
import { backoffMs } from "./backoff";
import { closeWords, finalRefusal } from "./closes";
import type { ChatClientOptions } from "./options";
import { retryable, whyRefused } from "./refusals";

type TransportOptions = Pick<ChatClientOptions, "token" | "pingEveryMs" | "pongWithinMs">;

const PING_EVERY_MS = 25_000;
const PONG_WITHIN_MS = 10_000;

/** A browser's window and document, which other runtimes lack. */
const page = globalThis as { window?: EventTarget; document?: EventTarget & { visibilityState: string } };

/** What the transport tells the session it carries. */
export interface TransportEvents {
  /** Where the next socket connects: the URL with its query. */
  address(): URL;
  /** A new socket is on its way (first its token, if the token is a function). */
  connecting(): void;
  /** A frame from the current socket, each of a batch's by itself. */
  frame(frame: ServerFrame): void;
  /** The current socket is gone: nothing sent on it will be answered. */
  dropped(): void;
  /** A socket the room let in ended, or one closed with a code that may mean stopping: the session says whether to come back. */
  ended(code: number): void;
  /** The next attempt is `retryInMs` away; why the last failed, and what the room said if it refused it. */
  waiting(retryInMs: number, reason: string, refusal: Refusal | null): void;
  /** The room refused the connection in a way that retrying cannot fix. */
  refused(refusal: Refusal): void;
}

/**
 * The socket under a session, one at a time: it connects with the token as
 * a subprotocol, reconnects with backoff, asks the room over HTTP why a
 * socket was refused (a WebSocket client is told nothing), and replaces a
 * socket whose pong is late. It reads no frame but `pong`, and hands over
 * each frame of a `batch` as if it had come alone; what the frames mean,
 * closes included, is the session's.
 */
export class Transport {
  readonly #options: TransportOptions;
  readonly #events: TransportEvents;
  #ws: WebSocket | null = null;
  /** The token the current socket offered, for asking why it was refused. */
  #token: string | undefined;
  /** Getting a token for the next socket. */
  #opening = false;
  /** The room let the current socket in: it is pinged, and its close is no refusal to ask about. */
  #admitted = false;
  #stopped = false;
  #attempt = 0;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #pingTimer: ReturnType<typeof setInterval> | undefined;
  #pongTimer: ReturnType<typeof setTimeout> | undefined;
  /** Messages received, a batch counting once: any message after a ping shows the socket is alive. */
  #heard = 0;
  readonly #wake = () => this.wake();
  readonly #wakeIfVisible = () => {
    if (page.document?.visibilityState === "visible") this.wake();
  };

  constructor(options: TransportOptions, events: TransportEvents) {
    this.#options = options;
    this.#events = events;
  }

  /** Opens the first socket. */
  start(): void {
    // In a browser, the network or the tab coming back is worth more than the backoff's next attempt.
    page.window?.addEventListener("online", this.#wake);
    page.document?.addEventListener("visibilitychange", this.#wakeIfVisible);
    void this.#connect();
  }

  /** Sends on the current socket, which the caller knows is there. */
  send(frame: ClientFrame): void {
    this.#ws!.send(JSON.stringify(frame));
  }

  /** The room welcomed the current socket: the backoff starts over. */
  admitted(): void {
    this.#admitted = true;
    this.#attempt = 0;
  }

  /** See `ChatClient.wake`. */
  wake(): void {
    if (this.#stopped || this.#opening) return;
    if (this.#ws === null) {
      this.#attempt = 0;
      void this.#connect();
    } else if (this.#admitted) {
      this.#ping();
    }
  }

  startPinging(): void {
    this.#stopPinging();
    this.#pingTimer = setInterval(() => this.#ping(), this.#options.pingEveryMs ?? PING_EVERY_MS);
  }

  /** The room said it is closing the current socket: let go of it now, since the close itself can come much later. */
  closing(): void {
    this.#hangUp("closing");
  }

  /** Connects again after the backoff. */
  retry(reason: string): void {
    this.#retry(null, reason);
  }

  /** For good: no socket, no attempt, no page events. */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#retryTimer);
    page.window?.removeEventListener("online", this.#wake);
    page.document?.removeEventListener("visibilitychange", this.#wakeIfVisible);
    this.#hangUp("bye");
  }

  async #connect(): Promise<void> {
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    const url = this.#events.address();
    this.#events.connecting();
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
      if (ws === this.#ws) this.#receive(ws, String(event.data));
    });
    ws.addEventListener("close", (event) => void this.#closed(ws, event.code));
  }

  #receive(ws: WebSocket, data: string): void {
    this.#heard++;
    if (data === "pong") {
      clearTimeout(this.#pongTimer);
      return;
    }
    let wire: WireFrame;
    try {
      wire = JSON.parse(data) as WireFrame;
    } catch {
      return;
    }
    if (wire.type !== "batch") {
      this.#events.frame(wire);
      return;
    }
    // Unreadable as a whole, like a message that is not JSON. A nested batch is passed on, to be ignored as any unknown frame is.
    if (!Array.isArray(wire.frames)) return;
    for (const frame of wire.frames) {
      // A frame may have ended this socket (a `closing` frame, or the app closing the client): what follows it is as dead as later messages would be.
      if (ws !== this.#ws) return;
      try {
        this.#events.frame(frame);
      } catch (error) {
        // Alone, this frame would have thrown from a listener of its own, and the next would still have come: report it the same way, and go on.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }

  async #closed(ws: WebSocket, code: number): Promise<void> {
    if (ws !== this.#ws) return;
    const admitted = this.#admitted;
    const token = this.#token;
    this.#drop();
    if (this.#stopped) return;
    if (admitted || finalRefusal(code) !== undefined) return this.#events.ended(code);
    // A refused upgrade says nothing to a WebSocket client: ask the room why, over HTTP.
    const why = await whyRefused(new URL(ws.url), token, closeWords(code));
    // Woken meanwhile, and already reconnecting; or closed.
    if (this.#ws !== null || this.#opening || this.#stopped) return;
    if ("refusal" in why) this.#retry(why.refusal, why.refusal.message);
    else this.#retry(null, why.reason);
  }

  /** Waits out the backoff, or gives up after a refusal that retrying cannot fix. */
  #retry(refusal: Refusal | null, reason: string): void {
    if (refusal !== null && !retryable(refusal)) {
      this.#events.refused(refusal);
      return;
    }
    const delay = Math.max(backoffMs(this.#attempt++), refusal?.retryAfterMs ?? 0);
    this.#events.waiting(delay, reason, refusal);
    this.#retryTimer = setTimeout(() => void this.#connect(), delay);
  }

  /** Forgets the current socket, and closes it. */
  #hangUp(reason: string): void {
    const ws = this.#ws;
    this.#drop();
    if (ws === null) return;
    try {
      ws.close(WEBSOCKET_CLOSE.normal, reason);
    } catch {
      // Already closing.
    }
  }

  #drop(): void {
    this.#ws = null;
    this.#admitted = false;
    this.#stopPinging();
    this.#events.dropped();
  }

  #ping(): void {
    const ws = this.#ws;
    if (ws === null || !this.#admitted) return;
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
    void this.#closed(ws, WEBSOCKET_CLOSE.abnormal);
    try {
      ws.close();
    } catch {
      // Already closing.
    }
  }
}
