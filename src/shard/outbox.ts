import { describe, log } from "../platform/log";
import { randomHex } from "../protocol/names";
import { positionOf, type SequenceFrame } from "../protocol";
import type { Entry } from "../room/roster";
import type { Shard } from "./shard";
import { PLACEMENT_HEADER, sequenced, type Delivery, type Item, type Mark, type Placement } from "./messages";

/** What the room's shards need from the room. */
export interface ShardLink {
  room: string;
  /** Shard `k`'s object. */
  stub(k: number): DurableObjectStub<Shard>;
  /** Everyone in the room. */
  online(): number;
  /** The newest seq broadcast so far. */
  broadcastSeq(): number;
  /** Stored entries after `after`, oldest first, at most `limit`. */
  history(after: number, limit: number): SequenceFrame[];
  /** How many the room has on shard `k`, and who they are. */
  count(k: number): number;
  members(k: number): Entry[];
  /** Someone the room placed on a shard is not there: they left without a word. */
  lost(id: string): void;
}

/** Messages one gap-filling call carries at most; more follow in the next. */
const FILL_LIMIT = 500;
/** Waits before calling a shard again after a call failed: from the first, doubling up to the last. */
const RETRY_FIRST_MS = 50;
const RETRY_MAX_MS = 5_000;

/** An item before the outbox numbers it. */
type NewItem = Item extends infer I ? (I extends unknown ? Omit<I, "n"> : never) : never;

/**
 * The room's side of its shards: one ordered outbox per shard, so that each
 * shard's sockets see the room's events in the order the room's own sockets
 * do. Everything queued in one synchronous section goes in one call, and
 * while a call is under way the next ones gather behind it, so a shard gets
 * at most one call at a time however fast messages come.
 */
export class Shards {
  /** Names this instance's stream; a shard that sees another knows the room started afresh. */
  readonly instance = randomHex(8);
  readonly #outboxes = new Map<number, Outbox>();
  /**
   * Numbers items across all shards, so that a shard the room forgot and
   * uses again never sees a number twice from the same instance.
   */
  readonly #counter = { last: 0 };

  /** Members whose upgrade is on its way to their shard, which a census cannot find yet. */
  readonly #placing = new Map<string, number>();
  /** Shards whose census is under way. */
  readonly #counting = new Set<number>();

  constructor(private readonly link: ShardLink) {}

  /**
   * Forwards an upgrade to the shard the room placed its member on, and
   * returns the shard's answer, a 101 for the client; null if the shard
   * could not be reached.
   */
  async place(request: Request, placement: Placement): Promise<Response | null> {
    const { shard, member } = placement;
    const headers = new Headers(request.headers);
    headers.set(PLACEMENT_HEADER, JSON.stringify(placement));
    this.#placing.set(member.id, shard);
    try {
      return await this.link.stub(shard).fetch(new Request(request.url, { headers }));
    } catch (error) {
      log({ event: "error", room: this.link.room, handler: `place on shard ${shard}`, message: describe(error) });
      return null;
    } finally {
      this.#placing.delete(member.id);
    }
  }

  /**
   * Asks shard `k` who it holds and how far it has delivered: anyone it
   * does not hold and was not on their way there when asked has left
   * without a word (the shard was reset, say, by a deploy), and a shard
   * that fell behind is sent what it missed.
   */
  async census(k: number): Promise<void> {
    if (this.#counting.has(k)) return;
    this.#counting.add(k);
    const asked = Date.now();
    const placing = new Set(this.#placing.keys());
    try {
      const census = await this.link.stub(k).census();
      const held = new Set(census.members);
      for (const entry of this.link.members(k)) {
        if (!held.has(entry.id) && !placing.has(entry.id) && entry.joinedAt <= asked) this.link.lost(entry.id);
      }
      if (this.link.count(k) > 0) this.#outbox(k).caughtUp(census.delivered);
    } catch (error) {
      log({ event: "error", room: this.link.room, handler: `census of shard ${k}`, message: describe(error) });
    } finally {
      this.#counting.delete(k);
    }
  }

  /** A shard answered that it holds `count` sockets: if the room counts more than are on their way, it takes a census. */
  #held(k: number, count: number): void {
    let arriving = 0;
    for (const shard of this.#placing.values()) if (shard === k) arriving++;
    if (count < this.link.count(k) - arriving) void this.census(k);
  }

  /** Queues an item for shard `k`. */
  push(k: number, item: NewItem): void {
    this.#outbox(k).push(item);
  }

  /** Where shard `k`'s stream is now: a socket placed there gets what is queued after this. */
  mark(k: number): Mark {
    return { instance: this.instance, n: this.#outbox(k).last };
  }

  /**
   * Shard `k` holds nobody now: once what is queued for it has gone (a
   * socket to close, say), nothing more goes to it, unless someone is
   * placed there again meanwhile.
   */
  forget(k: number): void {
    this.#outboxes.get(k)?.whenDrained(() => {
      if (this.link.count(k) > 0) return;
      this.#outboxes.get(k)?.close();
      this.#outboxes.delete(k);
    });
  }

  #outbox(k: number): Outbox {
    let outbox = this.#outboxes.get(k);
    if (outbox === undefined) {
      outbox = new Outbox(k, this.instance, this.link, this.#counter, (count) => this.#held(k, count));
      this.#outboxes.set(k, outbox);
    }
    return outbox;
  }
}

class Outbox {
  #items: Item[] = [];
  /** The number of the last item queued here. */
  #last: number;
  #fill: Delivery["fill"] = null;
  #busy = false;
  #scheduled = false;
  #retryMs = 0;
  #retry: ReturnType<typeof setTimeout> | undefined;
  #closed = false;
  #drained: (() => void) | undefined;

  constructor(
    private readonly k: number,
    private readonly instance: string,
    private readonly link: ShardLink,
    private readonly counter: { last: number },
    private readonly held: (count: number) => void,
  ) {
    this.#last = counter.last;
  }

  get last(): number {
    return this.#last;
  }

  push(item: NewItem): void {
    this.#last = ++this.counter.last;
    this.#items.push({ ...item, n: this.#last } as Item);
    this.#schedule();
  }

  caughtUp(delivered: number | null): void {
    if (delivered === null || this.#fill !== null) return;
    const next = this.#items.map(sequenced).find((position) => position !== null);
    const target = next != null ? next - 1 : this.link.broadcastSeq();
    if (delivered >= target) return;
    const messages = this.link.history(delivered, Math.min(FILL_LIMIT, target - delivered)).filter((m) => positionOf(m) <= target);
    const through = messages.length === FILL_LIMIT ? positionOf(messages.at(-1)!) : target;
    this.#fill = { messages, through };
    this.#schedule();
  }

  /** Calls `then` once nothing is queued, at once if nothing is. */
  whenDrained(then: () => void): void {
    this.#drained = then;
    this.#checkDrained();
  }

  #checkDrained(): void {
    if (this.#drained === undefined || this.#busy || this.#items.length > 0 || this.#fill !== null) return;
    const then = this.#drained;
    this.#drained = undefined;
    then();
  }

  close(): void {
    this.#closed = true;
    if (this.#retry !== undefined) clearTimeout(this.#retry);
  }

  /** Calls once the current synchronous section is done, so what it queued goes together. */
  #schedule(): void {
    if (this.#scheduled || this.#busy || this.#retry !== undefined) return;
    this.#scheduled = true;
    queueMicrotask(() => {
      this.#scheduled = false;
      void this.#send();
    });
  }

  async #send(): Promise<void> {
    if (this.#busy || this.#closed || (this.#items.length === 0 && this.#fill === null)) return;
    this.#busy = true;
    const items = this.#items.slice();
    const fill = this.#fill;
    try {
      const reply = await this.link.stub(this.k).deliver({ instance: this.instance, fill, items, online: this.link.online() });
      this.#retryMs = 0;
      // A census may have found a gap while the call was under way; that fill is still to go.
      if (this.#fill === fill) this.#fill = null;
      this.#items = this.#items.filter((i) => i.n > reply.applied);
      this.caughtUp(reply.delivered);
      this.held(reply.held);
    } catch (error) {
      // Kept and sent again: the shard applies each item once, whether or not the failed call reached it.
      log({ event: "error", room: this.link.room, handler: `deliver to shard ${this.k}`, message: describe(error) });
      this.#retryMs = Math.min(RETRY_MAX_MS, Math.max(RETRY_FIRST_MS, this.#retryMs * 2));
      this.#retry = setTimeout(() => {
        this.#retry = undefined;
        void this.#send();
      }, this.#retryMs);
    } finally {
      this.#busy = false;
    }
    if (this.#retry === undefined && (this.#items.length > 0 || this.#fill !== null)) void this.#send();
    else this.#checkDrained();
  }
}
