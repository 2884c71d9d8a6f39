import { describe, log } from "../platform/log";
import type { Format } from "../protocol";

/** Seconds over which the broadcast rate is averaged: long enough not to flap, short enough to let go soon after a burst. */
const RATE_SECONDS = 1;

/**
 * Whether an object sends its sockets each frame at once or, while busy,
 * gathers a window's frames into one. What a busy object spends is mostly
 * per frame it sends, so above `above` broadcasts a second, each socket
 * that asked for batches gets one frame per `windowMs` instead of one per
 * broadcast. Below it, nothing waits: a quiet room adds no latency.
 *
 * A socket's frames keep their order whatever the mode: once a window is
 * open, everything for an opted-in socket goes into it, acks and answers
 * too, until the window closes.
 */
export class Batching {
  /** Broadcasts per second, as a moving average that decays over `RATE_SECONDS`. */
  #rate = 0;
  #rateAt = 0;
  /** The open window's frames, per socket that asked for batches; null while none is open. */
  #window: Map<WebSocket, { format: Format; frames: string[] }> | null = null;

  constructor(
    private readonly windowMs: number,
    private readonly above: number,
    /** Sends one socket one wire frame. */
    private readonly send: (ws: WebSocket, data: string) => void,
    private readonly name: () => string,
  ) {}

  /** A frame goes to everyone: counts it, and opens a window, this frame's too, if the object is busy and none is open. */
  broadcast(now: number): void {
    if (this.windowMs === 0) return;
    const elapsed = Math.max(0, now - this.#rateAt) / 1000;
    this.#rate = this.#rate * Math.exp(-elapsed / RATE_SECONDS) + 1 / RATE_SECONDS;
    this.#rateAt = now;
    if (this.#window === null && this.#rate > this.above) this.#open();
  }

  /** Sends or, while a window is open and the socket asked for batches, holds a socket's frame. */
  out(ws: WebSocket, batched: boolean | undefined, format: Format, data: string): void {
    const window = this.#window;
    if (window === null || batched !== true) {
      this.send(ws, data);
      return;
    }
    const held = window.get(ws);
    if (held === undefined) window.set(ws, { format, frames: [data] });
    else held.frames.push(data);
  }

  /** Sends what a socket's window holds now, before a frame that must follow it by other means (a close, a switch out of batching). */
  release(ws: WebSocket): void {
    const held = this.#window?.get(ws);
    if (held === undefined) return;
    this.#window!.delete(ws);
    this.send(ws, wire(held.format, held.frames));
  }

  /** Drops a socket that is gone: whatever it was still to get has nowhere to go. */
  forget(ws: WebSocket): void {
    this.#window?.delete(ws);
  }

  #open(): void {
    this.#window = new Map();
    setTimeout(() => {
      try {
        this.#close();
      } catch (error) {
        log({ event: "error", room: this.name(), handler: "batch", message: describe(error) });
      }
    }, this.windowMs);
  }

  /**
   * Sends each socket its window's frames as one. Sockets that were sent the
   * same frames (every broadcast, nothing of their own) share one encoding:
   * the frames are the same strings, so comparing them is cheap.
   */
  #close(): void {
    const window = this.#window;
    this.#window = null;
    if (window === null) return;
    const last: Partial<Record<Format, { frames: string[]; data: string }>> = {};
    for (const [ws, { format, frames }] of window) {
      const shared = last[format];
      if (shared !== undefined && same(shared.frames, frames)) {
        this.send(ws, shared.data);
        continue;
      }
      const data = wire(format, frames);
      last[format] = { frames, data };
      this.send(ws, data);
    }
  }
}

/** Frames as one wire frame: a `batch` frame of the JSON texts, or lines of the text format; a lone frame as itself. */
function wire(format: Format, frames: string[]): string {
  if (frames.length === 1) return frames[0]!;
  return format === "json" ? `{"type":"batch","frames":[${frames.join(",")}]}` : frames.join("\n");
}

function same(a: string[], b: string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
