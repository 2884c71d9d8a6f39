import { PresenceBatch, type PresenceEvent } from "../room/presence";
import { Outgoing, positionOf, type SequenceFrame } from "../protocol";
import type { Member, SocketSet } from "../sockets/socket-set";
import { sequenced, type Delivered, type Delivery, type Item, type PresenceNews } from "./messages";

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
  admit(ws: WebSocket, member: Member, sockets: SocketSet): boolean {
    const mark = member.mark;
    if (mark === undefined || mark.instance !== this.#state.instance || mark.n >= this.#state.applied) return true;
    if (this.#droppedThrough > mark.n) return false;
    for (const { at, item } of this.#log) {
      const forOther = "to" in item && item.to !== undefined && item.to !== member.id;
      if (at > mark.n && !forOther) sockets.deliver(ws, itemText(item, member, at, this.#state.instance!));
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
      if (ws !== undefined && member !== undefined) {
        // A batching answer, sent as a frame, switches the socket where it stands; it answers the socket's own frame, so it is after its mark.
        if (item.frame.type === "batching") sockets.send(ws, item.frame);
        else sockets.deliver(ws, itemText(item, member, at, instance));
      }
    } else {
      const encoded =
        "frame" in item ? new Outgoing(item.frame) : new PresenceBatch(toPending(item.presence), item.presence.online, item.presence.at, item.presence.named);
      sockets.toEach((_, member) => itemText(item, member, at, instance, encoded));
    }
    this.#log.push({ at, item });
    if (this.#log.length > LOG_ITEMS) this.#droppedThrough = this.#log.shift()!.at;
  }
}

/** An item's text for one member, if it is theirs (after their mark, and a message newer than their welcome's history); else null. */
function itemText(item: Logged["item"], member: Member, at: number, instance: string, encoded?: Outgoing | PresenceBatch): string | null {
  const mark = member.mark;
  if (mark !== undefined && mark.instance === instance && at <= mark.n) return null;
  if ("frame" in item) {
    const position = positionOf(item.frame);
    if (position !== null && position <= (member.after ?? 0)) return null;
    const out = encoded instanceof Outgoing ? encoded : new Outgoing(item.frame);
    return out.in(member.format);
  }
  const batch =
    encoded instanceof PresenceBatch ? encoded : new PresenceBatch(toPending(item.presence), item.presence.online, item.presence.at, item.presence.named);
  return batch.for(member.id)?.in(member.format) ?? null;
}

function toPending(news: PresenceNews): { events: PresenceEvent[]; known: Map<string, number> } {
  return { events: news.events, known: new Map(news.known) };
}
