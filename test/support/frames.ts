import type { PresenceFrame, ServerFrame } from "../../src/protocol";

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
    await waitFor(
      () => this.#read < this.frames.length || this.ended,
      () => `a frame; unread: ${this.unread().join(" | ")}`,
    );
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

  /**
   * Reads presence frames until they name at least as many joins, leaves
   * and renames as asked: how the room batches them depends on timing, so a
   * test counts what they add up to. The frames read must all be presence.
   */
  async presence(want: { joined?: number; left?: number; renamed?: number }): Promise<Presence> {
    const seen: Presence = { joined: [], left: [], renamed: [], online: NaN, frames: 0 };
    while (seen.joined.length < (want.joined ?? 0) || seen.left.length < (want.left ?? 0) || seen.renamed.length < (want.renamed ?? 0)) {
      const frame = await this.next("presence");
      seen.joined.push(...frame.joined);
      seen.left.push(...frame.left);
      seen.renamed.push(...frame.renamed);
      seen.online = frame.online;
      seen.frames++;
    }
    return seen;
  }

  unread(): string[] {
    return this.frames.slice(this.#read);
  }
}

/** What some presence frames said, together; `online` is the last one's. */
export type Presence = Pick<PresenceFrame, "joined" | "left" | "renamed" | "online"> & { frames: number };

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
