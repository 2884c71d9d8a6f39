import type {
  AckFrame,
  ChangeFrame,
  ErrorFrame,
  MessageFrame,
  ModeratedFrame,
  PresenceFrame,
  ReceiptsFrame,
  Refusal,
  RenamedFrame,
  RenewedFrame,
  SearchFrame,
  ThreadFrame,
  TickFrame,
  User,
  UsersFrame,
  WelcomeFrame,
} from "../protocol";

/** A message as the app gets it: with whether it mentions this client (one of its connections, or its account). */
export type ChatMessage = MessageFrame & { mentionsMe: boolean };

/** Who else is typing now: the first few the room names, and how many in all. */
export interface TypingUsers {
  users: User[];
  count: number;
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
  message: ChatMessage;
  /** An edit, delete or new reaction summary of a message delivered before, once each, in sequence order. */
  change: ChangeFrame;
  /** The room's history was reset: forget the messages shown, the next ones start a new history. */
  reset: undefined;
  /** Some messages missed while away are no longer kept. */
  gap: undefined;
  presence: PresenceFrame;
  /** Whenever the room says who is typing, this client left out; and nobody when the connection drops. */
  typing: TypingUsers;
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
  /** The answers to `who`, `rename`, `renew`, `moderate`, `thread` and `search`, also as events. */
  renewed: RenewedFrame;
  users: UsersFrame;
  renamed: RenamedFrame;
  moderated: ModeratedFrame;
  thread: ThreadFrame;
  search: SearchFrame;
  /** The account's read position moved: by `markRead`, on another of its devices, or by a welcome. */
  read: { seq: number };
  /** Messages handed over after the read position, by others and not deleted, changed in number; `mentions`: how many of them mention this client. */
  unread: { count: number; mentions: number };
  /** How far people in a small room have read, for those whose position moved, as the room says. */
  receipts: ReceiptsFrame;
}

type Listener = (value: never) => void;

/** The app's listeners, by event, each called in the order it was added. */
export class Emitter<Events> {
  readonly #listeners = new Map<keyof Events, Set<Listener>>();

  /** Listens for an event; returns the function that stops listening. */
  on<K extends keyof Events>(event: K, listener: (value: Events[K]) => void): () => void {
    let set = this.#listeners.get(event);
    if (set === undefined) {
      set = new Set();
      this.#listeners.set(event, set);
    }
    set.add(listener);
    return () => void set.delete(listener);
  }

  emit<K extends keyof Events>(event: K, value: Events[K]): void {
    for (const listener of this.#listeners.get(event) ?? []) (listener as (value: Events[K]) => void)(value);
  }
}
