import { Outgoing, type LeaveReason, type PresenceFrame, type User } from "../protocol";

/** Someone came, left or changed their name. */
export type PresenceEvent = { kind: "joined"; user: User } | { kind: "left"; user: User; reason: LeaveReason } | { kind: "renamed"; user: User; from: string };

/** A batch of presence events, and how many of them each member already knows. */
export interface Pending {
  events: PresenceEvent[];
  known: Map<string, number>;
}

/**
 * The presence events not yet sent, in the order they happened. They live
 * in memory only, and lose nothing by it: the timer that ends a batch
 * keeps the room from hibernating until it is sent, and what else can end
 * an instance (a deploy, a crash) closes its sockets too, whose clients are
 * welcomed with the current user list when they come back.
 *
 * A member that was shown the user list during the batch (a newcomer's
 * welcome, a `who` answer) already knows the events before it.
 */
export class PresenceQueue {
  #pending: Pending = { events: [], known: new Map() };

  get size(): number {
    return this.#pending.events.length;
  }

  add(event: PresenceEvent): void {
    this.#pending.events.push(event);
    if (event.kind === "joined") this.known(event.user.id);
  }

  /** The member with this id was just shown the user list, which holds every event so far. */
  known(memberId: string): void {
    if (this.size > 0) this.#pending.known.set(memberId, this.size);
  }

  /** The pending batch, which is no longer pending. */
  take(): Pending {
    const pending = this.#pending;
    this.#pending = { events: [], known: new Map() };
    return pending;
  }
}

/**
 * The frames one batch sends. A member who was there before the batch
 * gets all of it; one who saw the user list during it only what happened
 * since, and nothing at all if that is nothing. Each distinct frame is
 * encoded once, whoever it goes to.
 */
export class PresenceBatch {
  readonly #frames = new Map<number, Outgoing>();

  /** `named`: false in a room too large to name everyone who comes and goes, which only learns the count. */
  constructor(
    private readonly pending: Pending,
    private readonly online: number,
    private readonly at: number,
    private readonly named: boolean,
  ) {}

  /** The frame for the member with this id, or null when the batch holds no news for it. */
  for(memberId: string): Outgoing | null {
    const { events, known } = this.pending;
    const from = known.get(memberId) ?? 0;
    if (from >= events.length) return null;
    // Counts alone are the same for everyone.
    const key = this.named ? from : 0;
    let out = this.#frames.get(key);
    if (out === undefined) {
      out = new Outgoing(this.#frame(this.named ? events.slice(from) : []));
      this.#frames.set(key, out);
    }
    return out;
  }

  #frame(events: PresenceEvent[]): PresenceFrame {
    const frame: PresenceFrame = { type: "presence", joined: [], left: [], renamed: [], online: this.online, at: this.at };
    for (const event of events) {
      if (event.kind === "joined") frame.joined.push(event.user);
      else if (event.kind === "left") frame.left.push({ user: event.user, reason: event.reason });
      else frame.renamed.push({ user: event.user, from: event.from });
    }
    return frame;
  }
}

/**
 * People a batch window is `presenceBatchMs` for: a room of more waits one
 * `presenceBatchMs` per this many. A batch costs a frame per member, so
 * presence then costs the room at most this many frames per
 * `presenceBatchMs` (1,000 a second by default) however large it is, and a
 * join storm costs frames in proportion to the joins, not to their square.
 * Someone in a room of 200 hears of a join within 0.2 s, in a room of
 * 1,000 within a second.
 */
const PEOPLE_PER_WINDOW = 50;

/** How long presence events gather before they go out, in a room of `online` people. */
export function presenceWindowMs(batchMs: number, online: number): number {
  return batchMs * Math.max(1, online / PEOPLE_PER_WINDOW);
}
