/**
 * What a room and its shards say to each other, and how a shard applies
 * what the room sends. A room that outgrows `SHARD_SIZE` sockets places new
 * ones on shard objects; the room stays the only writer, and each shard
 * relays to its own sockets the stream the room sends it: messages in seq
 * order, presence batches, and the answers to its members' frames. The
 * room's side is `outbox.ts`, the shard object `shard.ts`.
 */

import type { Bucket } from "../protocol";
import { PresenceBatch, type PresenceEvent } from "../room/presence";
import { Outgoing, positionOf, type ClosingFrame, type LeaveReason, type SequenceFrame, type ServerFrame } from "../protocol";
import { deliver, type Member, type OwnVerdict, type Payload, type SocketSet } from "../sockets/socket-set";

/**
 * A place in the room's stream to one shard: the room instance that
 * numbered it, and the number of the last item before it. Numbers restart
 * with each instance of the room, whose stream starts afresh.
 */
export interface Mark {
  instance: string;
  n: number;
}

/** A presence batch, as `PresenceBatch` takes it. */
export interface PresenceNews {
  events: PresenceEvent[];
  known: Array<[string, number]>;
  online: number;
  at: number;
  named: boolean;
}

/**
 * One thing the room sends a shard: a frame for every member or for one
 * (`to`), a presence batch, or a socket to close (the room has already
 * announced the leave).
 */
export type Item =
  | { n: number; frame: ServerFrame; to?: string }
  | { n: number; presence: PresenceNews }
  | { n: number; close: { to: string; closing: ClosingFrame } };

/** An item's place in the room's sequence: a message or change for everyone has one, anything else null. */
export function sequenced(item: Item): number | null {
  return "frame" in item && item.to === undefined ? positionOf(item.frame) : null;
}

/**
 * One call from the room to a shard. `fill` comes first: stored entries
 * the shard reported missing, up to seq `through` (any missing below it are
 * trimmed from history, or were edits of a message deleted since, so the
 * shard moves past them).
 */
export interface Delivery {
  instance: string;
  fill: { messages: SequenceFrame[]; through: number } | null;
  items: Item[];
  online: number;
}

/**
 * The shard's answer: the last item it applied, the newest seq it
 * delivered (null when it knows none), and how many sockets it holds.
 */
export interface Delivered {
  applied: number;
  delivered: number | null;
  held: number;
}

/** A socket the room placed on a shard, passed with the upgrade request. */
export interface Placement {
  shard: number;
  member: Member;
}

/** The header that carries a `Placement` from the room to the shard. */
export const PLACEMENT_HEADER = "X-Edge-Chat-Placement";

/** A frame from a shard's socket, which the room handles as if it were its own. */
export interface Forward {
  id: string;
  data: Payload;
  /** What the frame cost the socket's own limit, which its shard keeps. */
  own: OwnVerdict;
  addressFrames?: Bucket;
}

/** A shard's socket that closed or was closed. */
export interface Departure {
  id: string;
  reason: LeaveReason;
  code: number;
}

/** What a shard tells the room when asked who it holds. */
export interface Census {
  members: string[];
  delivered: number | null;
}

/** Items a shard keeps after applying them, for a socket whose upgrade arrives after its welcome. */
const LOG_ITEMS = 512;

type InboxState = { instance: string | null; applied: number; delivered: number | null; online: number };
type Logged = { at: number; item: Exclude<Item, { close: unknown }> | { n: number; frame: SequenceFrame } };

/**
 * A shard's side of the stream: applies each delivery once and in order,
 * and remembers in its storage how far it got, so that a shard that wakes
 * from hibernation or missed a call neither skips nor repeats a message.
 */
export class Inbox {
  static readonly SCHEMA = `CREATE TABLE IF NOT EXISTS inbox (
    key INTEGER PRIMARY KEY CHECK (key = 1),
    instance TEXT,
    applied INTEGER NOT NULL,
    delivered INTEGER,
    online INTEGER NOT NULL
  )`;

  #state: InboxState = { instance: null, applied: 0, delivered: null, online: 0 };
  readonly #log: Logged[] = [];
  /** The number of the last item that no longer is in the log; every one applied after it is. */
  #droppedThrough = 0;

  /** Whether the table exists: a shard that was emptied deleted it. */
  #stored: boolean;

  constructor(private readonly sql: SqlStorage) {
    this.#stored = sql.exec("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'inbox'").toArray().length > 0;
    const row = this.#stored ? sql.exec<InboxState>("SELECT instance, applied, delivered, online FROM inbox").toArray()[0] : undefined;
    if (row !== undefined) this.#state = { ...row };
  }

  /** Everyone in the room, as of the last delivery. */
  get online(): number {
    return this.#state.online;
  }

  get delivered(): number | null {
    return this.#state.delivered;
  }

  apply(delivery: Delivery, sockets: SocketSet): Delivered {
    const state = this.#state;
    if (delivery.instance !== state.instance) {
      state.instance = delivery.instance;
      state.applied = 0;
      this.#log.length = 0;
      this.#droppedThrough = 0;
    }
    state.online = delivery.online;
    if (delivery.fill !== null) {
      // Between the last item applied and the next: a member placed after that is welcomed with these.
      const at = state.applied + 0.5;
      for (const message of delivery.fill.messages) {
        const position = positionOf(message);
        if (state.delivered !== null && position <= state.delivered) continue;
        this.#apply({ n: at, frame: message }, at, sockets);
        state.delivered = position;
      }
      state.delivered = Math.max(state.delivered ?? 0, delivery.fill.through);
    }
    for (const item of delivery.items) {
      if (item.n <= state.applied) continue;
      const seq = sequenced(item);
      if (seq !== null && state.delivered !== null) {
        // Stop at a gap: the room fills it from history and sends the rest again.
        if (seq > state.delivered + 1) break;
        if (seq <= state.delivered) {
          state.applied = item.n;
          continue;
        }
      }
      this.#apply(item, item.n, sockets);
      state.applied = item.n;
      if (seq !== null) state.delivered = seq;
    }
    return { applied: state.applied, delivered: state.delivered, held: sockets.size };
  }

  /**
   * Stores how far the shard got. Called once deliveries pause, not after
   * each one: a row write per delivery would cost a shard more than its
   * requests. Nothing is lost by waiting: the timer that calls this keeps
   * the shard from hibernating until then, and what else ends an instance
   * (a deploy, a crash) closes its sockets with it. A shard with nobody in
   * it keeps nothing.
   */
  save(held: number): void {
    if (held === 0) return;
    if (!this.#stored) this.sql.exec(Inbox.SCHEMA);
    this.#stored = true;
    const state = this.#state;
    this.sql.exec(
      "INSERT OR REPLACE INTO inbox (key, instance, applied, delivered, online) VALUES (1, ?, ?, ?, ?)",
      state.instance,
      state.applied,
      state.delivered,
      state.online,
    );
  }

  /**
   * A socket placed at `mark` has just arrived: gives it what was applied
   * after its mark before it came, its welcome among it. False when that is
   * no longer all in the log, and the socket must reconnect.
   */
  admit(ws: WebSocket, member: Member): boolean {
    const mark = member.mark;
    if (mark === undefined || mark.instance !== this.#state.instance || mark.n >= this.#state.applied) return true;
    if (this.#droppedThrough > mark.n) return false;
    for (const { at, item } of this.#log) {
      const forOther = "to" in item && item.to !== undefined && item.to !== member.id;
      if (at > mark.n && !forOther) sendItem(item, ws, member, at, this.#state.instance!);
    }
    return true;
  }

  /** What a shard nobody is in must believe once its storage is deleted. */
  forget(): void {
    this.#stored = false;
    this.#state = { instance: null, applied: 0, delivered: null, online: 0 };
    this.#log.length = 0;
    this.#droppedThrough = 0;
  }

  #apply(item: Item | Logged["item"], at: number, sockets: SocketSet): void {
    if ("close" in item) {
      const ws = sockets.socketOf(item.close.to);
      if (ws !== undefined) sockets.end(ws, item.close.closing);
      return;
    }
    const instance = this.#state.instance!;
    if ("frame" in item && "to" in item && item.to !== undefined) {
      const ws = sockets.socketOf(item.to);
      const member = ws === undefined ? undefined : sockets.get(ws);
      if (ws !== undefined && member !== undefined) sendItem(item, ws, member, at, instance);
    } else {
      const encoded = "frame" in item ? new Outgoing(item.frame) : new PresenceBatch(toPending(item.presence), item.presence.online, item.presence.at, item.presence.named);
      for (const [ws, member] of sockets.entries()) sendItem(item, ws, member, at, instance, encoded);
    }
    this.#log.push({ at, item });
    if (this.#log.length > LOG_ITEMS) this.#droppedThrough = this.#log.shift()!.at;
  }
}

/** Sends one item to one member, if it is theirs: after their mark, and a message newer than their welcome's history. */
function sendItem(item: Logged["item"], ws: WebSocket, member: Member, at: number, instance: string, encoded?: Outgoing | PresenceBatch): void {
  const mark = member.mark;
  if (mark !== undefined && mark.instance === instance && at <= mark.n) return;
  if ("frame" in item) {
    const position = positionOf(item.frame);
    if (position !== null && position <= (member.after ?? 0)) return;
    const out = encoded instanceof Outgoing ? encoded : new Outgoing(item.frame);
    deliver(ws, out.in(member.format));
    return;
  }
  const batch = encoded instanceof PresenceBatch ? encoded : new PresenceBatch(toPending(item.presence), item.presence.online, item.presence.at, item.presence.named);
  deliver(ws, batch.for(member.id)?.in(member.format) ?? null);
}

function toPending(news: PresenceNews): { events: PresenceEvent[]; known: Map<string, number> } {
  return { events: news.events, known: new Map(news.known) };
}
