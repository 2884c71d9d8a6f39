import { fullBucket, take, WINDOW_MS, type Bucket, type Verdict } from "../protocol";

/** Entries an HTTP read returns per unit of its address's read budget. */
const READ_UNIT = 50;

/** What a read of up to `limit` entries costs: one per `READ_UNIT`, so that big pages cannot be fetched as often as small ones. */
export function readCost(limit: number): number {
  return Math.max(1, Math.ceil(limit / READ_UNIT));
}

/**
 * Buckets by key (client address), kept in memory only: a room is evicted
 * only after about ten idle seconds, by which time every bucket would have
 * refilled anyway. The map is kept in order of last use, so when it is full
 * only its least recently used end is looked at: each call does bounded work
 * however many addresses there are.
 */
export class Buckets {
  readonly #buckets = new Map<string, Bucket>();

  constructor(private readonly maxKeys = 10_000) {}

  take(key: string, perTenSeconds: number, now: number, cost = 1): Verdict {
    const bucket = this.#buckets.get(key) ?? fullBucket(perTenSeconds, now);
    // Deleting and setting again moves the key to the most recently used end.
    this.#buckets.delete(key);
    if (this.#buckets.size >= this.maxKeys) this.#dropOldest();
    this.#buckets.set(key, bucket);
    return take(bucket, perTenSeconds, now, WINDOW_MS, cost);
  }

  get size(): number {
    return this.#buckets.size;
  }

  /**
   * Forgets the least recently used key. Every other key was used later, so
   * if even this one is still refilling, all are: the room is busier than the
   * map is large, and the oldest is the fairest to lose.
   */
  #dropOldest(): void {
    this.#buckets.delete(this.#buckets.keys().next().value!);
  }
}
