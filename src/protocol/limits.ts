/**
 * Rate limiting: a token bucket that refills `capacity` tokens every window
 * (10 s unless said otherwise), up to that many. Every frame takes a token,
 * refused ones included, so a client that keeps sending while refused runs
 * into debt; once the debt shows it sent more than about five times the
 * limit in ten seconds, it is a flood and the connection is closed.
 */
export interface Bucket {
  tokens: number;
  /** When `tokens` was last brought up to date, in ms. */
  at: number;
}

export type Verdict = { ok: true } | { ok: false; flood: boolean; retryAfterMs: number };

/**
 * A budget of its own that some frames take from instead of the socket's
 * frame bucket and its address's: typing, and reactions. Neither can then
 * starve messages, however much of it a client sends.
 */
export type Lane = "typing" | "reactions";

const LANE_OF = new Map<string, Lane>([
  ["typing", "typing"],
  ["react", "reactions"],
  ["unreact", "reactions"],
]);

// Only the start of a frame is looked at, before it is parsed: a command
// whose `type` comes first, as every client here writes it. Anything else
// takes from the frame bucket.
const LANE_FRAME = /^\s*\{\s*"type"\s*:\s*"(typing|react|unreact)"/;
const LANE_PREFIX_CHARS = 64;

/** The lane a frame's raw text asks to be charged to, or null for the frame bucket. */
export function laneOf(data: string): Lane | null {
  const match = LANE_FRAME.exec(data.slice(0, LANE_PREFIX_CHARS));
  return match === null ? null : LANE_OF.get(match[1]!)!;
}

/**
 * Whether a parsed frame may have been charged to `lane`. JSON keeps the
 * last of repeated keys, so a frame that starts as a typing frame may parse
 * as something else, which must not pass on typing's budget.
 */
export function belongsTo(type: string, lane: Lane): boolean {
  return LANE_OF.get(type) === lane;
}

export const WINDOW_MS = 10_000;
/** Debt, in multiples of the limit, past which refused frames count as a flood. */
const FLOOD_DEBT = 3;

export function fullBucket(capacity: number, now: number): Bucket {
  return { tokens: capacity, at: now };
}

/**
 * Takes `cost` tokens (one, unless said otherwise; never more than the
 * bucket holds) from `bucket`, updating it in place, and says whether the
 * frame or request may pass.
 */
export function take(bucket: Bucket, capacity: number, now: number, windowMs = WINDOW_MS, cost = 1): Verdict {
  if (capacity <= 0) return { ok: true };
  const refill = ((now - bucket.at) * capacity) / windowMs;
  const taken = Math.min(cost, capacity);
  bucket.tokens = Math.min(capacity, bucket.tokens + Math.max(0, refill)) - taken;
  bucket.at = now;
  if (bucket.tokens >= 0) return { ok: true };
  return {
    ok: false,
    flood: bucket.tokens < -FLOOD_DEBT * capacity,
    // Until the same take again would leave the bucket at zero.
    retryAfterMs: Math.ceil(((taken - bucket.tokens) * windowMs) / capacity),
  };
}

/** When the bucket will be full again if nothing takes from it; forgetting it from then on loses nothing. */
export function fullAt(bucket: Bucket, capacity: number, windowMs = WINDOW_MS): number {
  if (capacity <= 0) return bucket.at;
  return bucket.at + Math.ceil((Math.max(0, capacity - bucket.tokens) * windowMs) / capacity);
}

/** Whether a string's UTF-8 encoding is longer than `max` bytes, without encoding short ones. */
export function exceedsBytes(text: string, max: number): boolean {
  // A UTF-16 code unit takes 1 to 3 bytes in UTF-8.
  if (text.length > max) return true;
  if (text.length * 3 <= max) return false;
  return new TextEncoder().encode(text).byteLength > max;
}
