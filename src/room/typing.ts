import { describe, log } from "../platform/log";
import { TYPING_USERS_SHOWN, type TypingFrame, type User } from "../protocol";
import type { RoomParts } from "./parts";
import { presenceWindowMs } from "./presence";
import { toUser } from "./roster";

/**
 * Who is typing, each until their typing runs out, and what the last
 * typing frame showed of it. A frame goes out only when what it shows
 * changed: a renewal changes nothing, and neither does someone who began
 * and stopped between two frames.
 */
export class TypingSet {
  /** Member id → when their typing runs out (epoch ms), in the order they began. */
  readonly #until = new Map<string, number>();
  /** Who began since the last frame; a burst is named once, in the frame after it began. */
  readonly #started = new Set<string>();
  #shown = shownOf([], 0);

  get size(): number {
    return this.#until.size;
  }

  /** Typing until `until`, begun now or renewed. */
  start(id: string, until: number): void {
    if (!this.#until.has(id)) this.#started.add(id);
    this.#until.set(id, until);
  }

  /** Whether they were typing. */
  stop(id: string): boolean {
    this.#started.delete(id);
    return this.#until.delete(id);
  }

  /** Ends each typing that ran out by `now`; whether any did. */
  expire(now: number): boolean {
    let ended = false;
    for (const [id, until] of this.#until) if (until <= now) ended = this.stop(id) || ended;
    return ended;
  }

  /** When the first typing runs out, or null when nobody types. */
  nextEnd(): number | null {
    let first: number | null = null;
    for (const until of this.#until.values()) if (first === null || until < first) first = until;
    return first;
  }

  /** The frame for everyone if it would show something new, and the set as shown since; null otherwise. */
  take(userOf: (id: string) => User | undefined): TypingFrame | null {
    const frame = this.current(userOf, Array.from(this.#started));
    this.#started.clear();
    const shown = shownOf(frame.users, frame.count);
    if (shown === this.#shown) return null;
    this.#shown = shown;
    return frame;
  }

  /** The set as it is now, naming those of `started` that still type. */
  current(userOf: (id: string) => User | undefined, started: string[] = []): TypingFrame {
    return { type: "typing", users: firstUsers(this.#until.keys(), userOf), count: this.#until.size, started: firstUsers(started, userOf) };
  }
}

function firstUsers(ids: Iterable<string>, userOf: (id: string) => User | undefined): User[] {
  const users: User[] = [];
  for (const id of ids) {
    if (users.length === TYPING_USERS_SHOWN) break;
    const user = userOf(id);
    if (user !== undefined) users.push(user);
  }
  return users;
}

/** What a frame shows of the set; names included, so that a rename shows at the next change. */
function shownOf(users: User[], count: number): string {
  return `${count} ${JSON.stringify(users)}`;
}

/**
 * The room's typing indicator: the set in memory, never stored, and its two
 * one-shot timers. Changes gather for a presence batch window, so that a
 * member gets at most one typing frame per window however many type. One
 * timer ends the first typing that runs out, and exists only while someone
 * types: it keeps the room awake for at most `typingSeconds`. A room that
 * restarts forgets who was typing; they are shown again when they next type.
 */
export class TypingIndicator {
  readonly #set = new TypingSet();
  #windowTimer: ReturnType<typeof setTimeout> | undefined;
  #endTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly parts: Pick<RoomParts, "name" | "config" | "roster">,
    private readonly send: (frame: TypingFrame) => void,
  ) {}

  /** A `typing` frame from this member: they type for `typingSeconds` more. */
  start(id: string, now: number): void {
    this.#set.start(id, now + this.parts.config.typingSeconds * 1000);
    this.#changed();
    this.#endTimer ??= this.#armEnd();
  }

  /** They stopped, sent a message or left. */
  stop(id: string): void {
    if (!this.#set.stop(id)) return;
    this.#changed();
    if (this.#set.size === 0 && this.#endTimer !== undefined) {
      clearTimeout(this.#endTimer);
      this.#endTimer = undefined;
    }
  }

  /** Who types now, for someone who just came in; null when nobody does. */
  current(): TypingFrame | null {
    return this.#set.size === 0 ? null : this.#set.current((id) => this.#userOf(id));
  }

  #userOf(id: string): User | undefined {
    const entry = this.parts.roster.get(id);
    return entry === undefined ? undefined : toUser(entry);
  }

  #changed(): void {
    const { config, roster } = this.parts;
    this.#windowTimer ??= setTimeout(() => this.#guarded("typing", () => this.#flush()), presenceWindowMs(config.presenceBatchMs, roster.size));
  }

  #flush(): void {
    this.#windowTimer = undefined;
    const frame = this.#set.take((id) => this.#userOf(id));
    if (frame !== null) this.send(frame);
  }

  /** The timer for the first typing to run out; renewals since it was set only make it find nobody yet, and set it again. */
  #armEnd(): ReturnType<typeof setTimeout> | undefined {
    const end = this.#set.nextEnd();
    if (end === null) return undefined;
    return setTimeout(
      () =>
        this.#guarded("typing expiry", () => {
          this.#endTimer = undefined;
          if (this.#set.expire(Date.now())) this.#changed();
          this.#endTimer = this.#armEnd();
        }),
      Math.max(0, end - Date.now()),
    );
  }

  #guarded(handler: string, work: () => void): void {
    try {
      work();
    } catch (error) {
      log({ event: "error", room: this.parts.name, handler, message: describe(error) });
    }
  }
}
