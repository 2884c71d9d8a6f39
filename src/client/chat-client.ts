/**
 * `edge-chat/client`: a lossless session with one chat room, for any
 * JavaScript runtime with `WebSocket` and `fetch` (browsers, Node 22 and
 * later, Workers, Deno). It reconnects with backoff and jitter, resumes
 * after the last entry it has, resends unacknowledged messages under their
 * ids (which the room deduplicates), paces what it sends to the room's rate
 * limit, and hands the app each message once, in `seq` order, however often
 * the connection drops. docs/protocol.md describes the frames it speaks.
 */

import type {
  DirectRoom,
  ModeratedFrame,
  ModerationFrame,
  MyRooms,
  RenewedFrame,
  Sanction,
  SearchFrame,
  SearchRequest,
  ThreadFrame,
  ThreadRequest,
  User,
  UsersFrame,
} from "../protocol";
import { randomHex } from "../protocol/names";
import { leaveRoom, myRooms, openDirect } from "./account-api";
import { Emitter, type ChatEvents, type ConnectionState } from "./events";
import type { ChatClientOptions } from "./options";
import { Session } from "./session";

export type * from "../protocol";
/** A frame in the words of the room's text format: `bob entered the chat room.`, `Done: eve was banned until …`. */
export { toText } from "../protocol";
export { ChatError } from "./chat-error";
export type { ChatEvents, ChatMessage, ConnectionState, TypingUsers } from "./events";
export type { ChatClientOptions } from "./options";

/**
 * One client's session with one room, as the app sees it: requests that
 * resolve with the room's answers, and events. Behind it a `Session` makes
 * sense of the room's frames, over a `Transport` that keeps a socket open.
 */
export class ChatClient {
  readonly #events = new Emitter<ChatEvents>();
  readonly #session: Session;

  /**
   * The rooms of the account a token names, newest activity first, with how
   * far it read in each and what it has not: `base` is the server (its
   * http(s) or ws(s) URL), `token` one for every room (`"room":"*"`) with a
   * `sub`. Rejects with a `ChatError` carrying the server's code.
   */
  static myRooms(base: string, token: string): Promise<MyRooms> {
    return myRooms(base, token);
  }

  /** Takes `room` off the account's list of rooms, as `myRooms` is called. */
  static leaveRoom(base: string, token: string, room: string): Promise<void> {
    return leaveRoom(base, token, room);
  }

  /**
   * The private room of the token's account and the account `to` (a
   * `sub`): the same room whichever of the two asks, which only they may
   * join. Connect to its `wsUrl` with a token that names either of them.
   */
  static openDirect(base: string, token: string, to: string): Promise<DirectRoom> {
    return openDirect(base, token, to);
  }

  constructor(options: ChatClientOptions) {
    this.#session = new Session(options, this.#events);
  }

  get state(): ConnectionState {
    return this.#session.state;
  }

  /** Who the room says this client is, from the last welcome. */
  get you(): User | null {
    return this.#session.you;
  }

  /** The last number of the room's sequence delivered to the app. */
  get lastSeq(): number {
    return this.#session.lastSeq;
  }

  /** Messages sent and not yet acknowledged, oldest first: they are resent after each reconnect. */
  get pending(): Array<{ id: string; text: string }> {
    return this.#session.pending;
  }

  /** How far this client's account has read, as far as it knows: the welcome's word, raised by `markRead` and by the account's other devices. */
  get readSeq(): number {
    return this.#session.readSeq;
  }

  /** Messages handed over after `readSeq` that others wrote and that are not deleted. */
  get unread(): number {
    return this.#session.unread;
  }

  /**
   * Marks the room read up to `seq` (by default, all that was handed over;
   * never past that): `readSeq` moves at once, never back. The room hears
   * of it at most once per 2 s, the newest position when that time is up,
   * and the account's other devices with it. An anonymous client, which
   * the room keeps no position for, keeps it here only.
   */
  markRead(seq?: number): void {
    this.#session.markRead(seq);
  }

  /** Listens for an event; returns the function that stops listening. */
  on<K extends keyof ChatEvents>(event: K, listener: (value: ChatEvents[K]) => void): () => void {
    return this.#events.on(event, listener);
  }

  /**
   * Sends a message; resolves with its `seq` once the room has stored it,
   * rejects with a `ChatError` if the room refuses it. Until then it is
   * resent after every reconnect, and after any wait the room asks for,
   * under the same id, which the room deduplicates: a rate limit delays a
   * message but never refuses it. Messages are stored in the order they
   * were sent. Sending again with the `id` of a refused message retries it.
   */
  send(text: string, options: { id?: string; replyTo?: number } = {}): Promise<number> {
    const { id = randomHex(16), replyTo } = options;
    return this.#session.write({ type: "message", text, ...(replyTo !== undefined && { replyTo }), id }, text);
  }

  /** Sends a reply to message `seq`, as `send` does: the room shows who and what it answers. */
  reply(seq: number, text: string): Promise<number> {
    return this.send(text, { replyTo: seq });
  }

  /**
   * Tells the room that this client's user is typing: call it on every
   * keystroke, and with `false` when they clear what they typed. The room
   * hears of it at most once per half of its `typingSeconds`, and of a stop
   * only after it heard of typing; a sent message stops it by itself.
   * Nothing of it is kept for the next connection.
   */
  typing(active = true): void {
    this.#session.typing(active);
  }

  /**
   * Adds this client's reaction `emoji` (one emoji, or a `:short_name:`) to
   * message `seq`; resolves with the reaction's own number in the room's
   * sequence. Sent like a message, and resent under its id until answered,
   * but paced to the room's budget for reactions, so that reacting never
   * holds up a message.
   */
  react(seq: number, emoji: string): Promise<number> {
    return this.#session.write({ type: "react", seq, emoji, id: randomHex(16) });
  }

  /** Takes back this client's reaction `emoji` to message `seq`, as `react` adds one. */
  unreact(seq: number, emoji: string): Promise<number> {
    return this.#session.write({ type: "unreact", seq, emoji, id: randomHex(16) });
  }

  /** Message `seq` as it is now, and a page of its replies: the first, or those after reply `after`; `more` says another page follows. */
  async thread(seq: number, after?: number): Promise<ThreadFrame> {
    const frame: ThreadRequest = after === undefined ? { type: "thread", seq } : { type: "thread", seq, after };
    return (await this.#session.request(frame)) as ThreadFrame;
  }

  /**
   * Messages whose text matches `q` (words; SQLite FTS5 syntax), newest
   * first, with the matching words marked in each `snippet`; a page older
   * than message `before` if given: while `more`, ask again with the last
   * result's `seq`. Rejects with `bad_query` for a query the room cannot
   * read.
   */
  async search(q: string, before?: number): Promise<SearchFrame> {
    const frame: SearchRequest = before === undefined ? { type: "search", q } : { type: "search", q, before };
    return (await this.#session.request(frame)) as SearchFrame;
  }

  /**
   * Whether a user id is this client's: its id changes at every reconnect,
   * and this knows every one it had in this session, so that an app can
   * tell its own messages and reactions.
   */
  isYou(userId: string): boolean {
    return this.#session.isYou(userId);
  }

  /** A page of the user list: the first, or the one after the user with id `after`. */
  async who(after?: string): Promise<UsersFrame> {
    return (await this.#session.request(after === undefined ? { type: "who" } : { type: "who", after })) as UsersFrame;
  }

  /** Changes this client's display name; resolves with who it now is. */
  rename(name: string): Promise<User> {
    return this.#session.rename(name);
  }

  /** Replaces the text of one's own message `seq`; resolves with the edit's own number. Sent like a message, in order with them. */
  edit(seq: number, text: string): Promise<number> {
    return this.#session.write({ type: "edit", seq, text, id: randomHex(16) });
  }

  /** Deletes one's own message `seq`, or for a moderator anyone's; resolves with the delete's own number. Sent like a message. */
  delete(seq: number): Promise<number> {
    return this.#session.write({ type: "delete", seq, id: randomHex(16) });
  }

  /** A moderator's kick, ban, unban, mute or unmute of the user with this id. */
  async moderate(action: Sanction, user: string, seconds?: number): Promise<ModeratedFrame> {
    const frame: ModerationFrame = seconds === undefined ? { type: action, user } : { type: action, user, seconds };
    return (await this.#session.request(frame)) as ModeratedFrame;
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
    return ((await this.#session.request({ type: "token", token })) as RenewedFrame).exp;
  }

  /**
   * A hint that the network or the screen came back: reconnect now instead
   * of waiting out the backoff, or check at once that an open socket still
   * answers (one that slept with its device may be dead without knowing).
   * In a browser the client takes this hint itself, on `online` and on
   * `visibilitychange` to visible.
   */
  wake(): void {
    this.#session.wake();
  }

  /** Ends the session: the socket closes, and messages not yet acknowledged are rejected. */
  close(): void {
    this.#session.close();
  }
}
