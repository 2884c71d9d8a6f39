import { describe, log } from "./log";
import { randomHex } from "./names";
import type { MessageFrame } from "./protocol";
import type { Delivered, Delivery, Item, Mark } from "./shard-protocol";

/** What the room's shards need from the room. */
export interface ShardLink {
  /** Calls shard `k`. */
  deliver(k: number, delivery: Delivery): Promise<Delivered>;
  /** Everyone in the room. */
  online(): number;
  /** The newest seq broadcast so far. */
  broadcastSeq(): number;
  /** Stored messages after `after`, oldest first, at most `limit`. */
  history(after: number, limit: number): MessageFrame[];
  /** Shard `k` said how many sockets it holds. */
  held(k: number, count: number): void;
  room: string;
}

/** Messages one gap-filling call carries at most; more follow in the next. */
const FILL_LIMIT = 500;
/** Waits before calling a shard again after a call failed: from the first, doubling up to the last. */
const RETRY_FIRST_MS = 50;
const RETRY_MAX_MS = 5_000;

type NewItem = Item extends infer I ? (I extends { n: number } ? Omit<I, "n"> : never) : never;

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

  constructor(private readonly link: ShardLink) {}

  /** Queues an item for shard `k`. */
  push(k: number, item: NewItem): void {
    this.#outbox(k).push(item);
  }

  /** Where shard `k`'s stream is now: a socket placed there gets what is queued after this. */
  mark(k: number): Mark {
    return { instance: this.instance, n: this.#outbox(k).last };
  }

  /** Shard `k` has delivered up to `delivered`: if it is behind, fills the gap from history. */
  caughtUp(k: number, delivered: number | null): void {
    this.#outbox(k).caughtUp(delivered);
  }

  /** Shard `k` holds nobody now: nothing more goes to it. */
  forget(k: number): void {
    this.#outboxes.get(k)?.close();
    this.#outboxes.delete(k);
  }

  #outbox(k: number): Outbox {
    let outbox = this.#outboxes.get(k);
    if (outbox === undefined) {
      outbox = new Outbox(k, this.instance, this.link, this.#counter);
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

  constructor(
    private readonly k: number,
    private readonly instance: string,
    private readonly link: ShardLink,
    private readonly counter: { last: number },
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
    const next = this.#items.find((i): i is Extract<Item, { frame: unknown }> => "frame" in i && i.to === undefined && i.frame.type === "message");
    const target = next !== undefined && next.frame.type === "message" ? next.frame.seq - 1 : this.link.broadcastSeq();
    if (delivered >= target) return;
    const messages = this.link.history(delivered, Math.min(FILL_LIMIT, target - delivered)).filter((m) => m.seq <= target);
    const through = messages.length === FILL_LIMIT ? messages.at(-1)!.seq : target;
    this.#fill = { messages, through };
    this.#schedule();
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
      const reply = await this.link.deliver(this.k, { instance: this.instance, fill, items, online: this.link.online() });
      this.#retryMs = 0;
      this.#fill = null;
      this.#items = this.#items.filter((i) => i.n > reply.applied);
      this.caughtUp(reply.delivered);
      this.link.held(this.k, reply.held);
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
  }
}
