/**
 * Rate limiting: a token bucket that refills `perTenSeconds` tokens every
 * 10 s, up to that many. Every frame takes a token, refused ones included,
 * so a client that keeps sending while refused runs into debt; once the debt
 * shows it sent more than about five times the limit in ten seconds, it is a
 * flood and the connection is closed.
 */
export interface Bucket {
  tokens: number;
  /** When `tokens` was last brought up to date, in ms. */
  at: number;
}

export type Verdict = { ok: true } | { ok: false; flood: boolean; retryAfterMs: number };

const WINDOW_MS = 10_000;
/** Debt, in multiples of the limit, past which refused frames count as a flood. */
const FLOOD_DEBT = 3;

export function fullBucket(perTenSeconds: number, now: number): Bucket {
  return { tokens: perTenSeconds, at: now };
}

/** Takes one token from `bucket` (updating it in place) and says whether the frame may pass. */
export function take(bucket: Bucket, perTenSeconds: number, now: number): Verdict {
  if (perTenSeconds <= 0) return { ok: true };
  const refill = ((now - bucket.at) * perTenSeconds) / WINDOW_MS;
  bucket.tokens = Math.min(perTenSeconds, bucket.tokens + Math.max(0, refill)) - 1;
  bucket.at = now;
  if (bucket.tokens >= 0) return { ok: true };
  return {
    ok: false,
    flood: bucket.tokens < -FLOOD_DEBT * perTenSeconds,
    // Until the next frame's take would leave the bucket at zero.
    retryAfterMs: Math.ceil(((1 - bucket.tokens) * WINDOW_MS) / perTenSeconds),
  };
}

/** Whether a string's UTF-8 encoding is longer than `max` bytes, without encoding short ones. */
export function exceedsBytes(text: string, max: number): boolean {
  // A UTF-16 code unit takes 1 to 3 bytes in UTF-8.
  if (text.length > max) return true;
  if (text.length * 3 <= max) return false;
  return new TextEncoder().encode(text).byteLength > max;
}

/**
 * Buckets by key (client address), kept in memory only: a room is evicted
 * only after about ten idle seconds, by which time every bucket would have
 * refilled anyway. Full buckets are dropped when the map grows, so an
 * address sweep cannot grow it without bound.
 */
export class Buckets {
  readonly #buckets = new Map<string, Bucket>();

  constructor(private readonly maxKeys = 10_000) {}

  take(key: string, perTenSeconds: number, now: number): Verdict {
    if (this.#buckets.size >= this.maxKeys) this.#dropIdle(now);
    let bucket = this.#buckets.get(key);
    if (bucket === undefined) {
      bucket = fullBucket(perTenSeconds, now);
      this.#buckets.set(key, bucket);
    }
    return take(bucket, perTenSeconds, now);
  }

  get size(): number {
    return this.#buckets.size;
  }

  #dropIdle(now: number): void {
    for (const [key, bucket] of this.#buckets) if (now - bucket.at >= WINDOW_MS) this.#buckets.delete(key);
    // Everyone active at once: forget the oldest rather than grow.
    if (this.#buckets.size >= this.maxKeys) this.#buckets.delete(this.#buckets.keys().next().value!);
  }
}
