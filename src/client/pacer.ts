import { fullBucket, WINDOW_MS, type Bucket } from "../protocol";

/**
 * The client's copy of its socket's token bucket in the room (src/protocol/limits.ts
 * `take`): as many frames as the welcome's `limits.framesPer10s` at once,
 * then that many per 10 s, refilling continuously. Sending only when this
 * bucket has a token keeps the room from refusing frames for their rate,
 * and so from ever closing the socket as a flood.
 */
export class Pacer {
  #capacity = 0;
  #bucket: Bucket = fullBucket(0, 0);
  /** Before this, nothing goes, whatever the bucket says: the room asked to wait. */
  #notBefore = 0;

  /**
   * The room counts a frame when it reads it, later than it was sent, and
   * a frame delayed more than the next can be counted closer to it than it
   * was sent. A frame that goes only once the one before was answered can
   * be counted at most one frame early: one token kept in reserve covers it.
   */
  get #reserve(): number {
    return this.#capacity > 1 ? 1 : 0;
  }

  /** A new socket, with a full bucket of `framesPer10s` (0: no limit). */
  reset(framesPer10s: number, now: number): void {
    this.#capacity = Math.max(0, framesPer10s);
    this.#bucket = fullBucket(this.#capacity, now);
    this.#notBefore = 0;
  }

  /** When the next frame may go: `now`, or later. */
  readyAt(now: number): number {
    const at = Math.max(now, this.#notBefore);
    if (this.#capacity === 0) return at;
    const missing = this.#reserve + 1 - this.#tokens(at);
    return missing <= 0 ? at : at + Math.ceil((missing * WINDOW_MS) / this.#capacity);
  }

  /** A frame went out. */
  take(now: number): void {
    if (this.#capacity === 0) return;
    this.#bucket = { tokens: this.#tokens(now) - 1, at: now };
  }

  /**
   * The room refused a frame for its rate and says when the next would
   * pass: what the room counts wins over this copy (the address's bucket,
   * shared with other sockets, can be the emptier one).
   */
  refused(retryAfterMs: number, now: number): void {
    this.#notBefore = Math.max(this.#notBefore, now + retryAfterMs);
    if (this.#capacity === 0) return;
    const tokens = this.#reserve + 1 - (retryAfterMs * this.#capacity) / WINDOW_MS;
    this.#bucket = { tokens: Math.min(tokens, this.#tokens(now)), at: now };
  }

  #tokens(now: number): number {
    const { tokens, at } = this.#bucket;
    return Math.min(this.#capacity, tokens + (Math.max(0, now - at) * this.#capacity) / WINDOW_MS);
  }
}
