import type { ServerFrame } from "../src/protocol";

type FrameOf<T extends ServerFrame["type"]> = Extract<ServerFrame, { type: T }>;

/**
 * The reading side of a test client, the same inside workerd and in Node:
 * every frame received is kept, and a test reads them in order.
 */
export abstract class FrameReader {
  readonly frames: string[] = [];
  #read = 0;

  /** Whether the socket has closed, so that waiting for a frame is hopeless. */
  protected abstract get ended(): boolean;

  /** The next unread text frame. */
  async nextText(): Promise<string> {
    await waitFor(() => this.#read < this.frames.length || this.ended, () => `a frame; unread: ${this.unread().join(" | ")}`);
    if (this.#read === this.frames.length) throw new Error("the socket closed while a frame was awaited");
    return this.frames[this.#read++]!;
  }

  /** The next unread frame, which must be JSON of the given type. */
  async next<T extends ServerFrame["type"]>(type: T): Promise<FrameOf<T>> {
    const text = await this.nextText();
    const frame = JSON.parse(text) as ServerFrame;
    if (frame.type !== type) throw new Error(`expected a ${type} frame, got ${text}`);
    return frame as FrameOf<T>;
  }

  /** Reads frames until one of the given type, which it returns. */
  async skipTo<T extends ServerFrame["type"]>(type: T): Promise<FrameOf<T>> {
    for (;;) {
      const frame = JSON.parse(await this.nextText()) as ServerFrame;
      if (frame.type === type) return frame as FrameOf<T>;
    }
  }

  unread(): string[] {
    return this.frames.slice(this.#read);
  }
}

/**
 * Polls until `ready` holds; generous, since a shared 2-core machine can be
 * slow. It reads `performance.now()`, which tests do not mock, unlike `Date.now()`.
 */
export async function waitFor(ready: () => boolean, what: () => string, timeoutMs = 10_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!ready()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what()}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
