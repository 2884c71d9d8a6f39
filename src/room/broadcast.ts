import { log, describe } from "../platform/log";
import { positionOf, type ServerFrame } from "../protocol";
import { PresenceBatch, PresenceQueue, presenceWindowMs, type PresenceEvent } from "./presence";
import type { RoomParts } from "./parts";
import type { Entry } from "./roster";

/**
 * What goes to everyone in the room, on its own sockets and its shards':
 * stored messages once their commit is confirmed, each with its sender's
 * ack, and presence news in batches, in the order they happened.
 */
export class Broadcast {
  readonly #presence = new PresenceQueue();
  /** Ends the presence batch window, while one is open. */
  #presenceTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly parts: Pick<RoomParts, "name" | "config" | "storage" | "sequencer" | "sockets" | "roster" | "shards">) {}

  /**
   * Broadcasts the queued messages once their commit is confirmed. Frames
   * sent before it would be held back by the output gate until then anyway,
   * and a socket's frames only start moving when the gate opens; sent after
   * it, each one goes straight out. Measured in docs/performance.md ("What was tried").
   */
  async whenStored(): Promise<void> {
    await this.parts.storage.sync();
    this.flush();
  }

  /**
   * Sends the queued messages, after the presence news that came before
   * them, each followed by its sender's ack, so that nothing sent to that
   * socket later can overtake the ack: clients match answers to what they
   * sent by order. Frames sent before their commit still wait for it at the
   * output gate.
   */
  flush(): void {
    const { sequencer, sockets, roster, shards, config } = this.parts;
    if (!sequencer.hasUnsent) return;
    this.flushPresence();
    const held = roster.shards();
    let messages = 0;
    for (let unsent = sequencer.next(); unsent !== undefined; unsent = sequencer.next()) {
      const { frame, ack } = unsent;
      sockets.fanOut(frame);
      for (const k of held) shards.push(k, { frame });
      if (ack !== undefined) ack.to.deliver({ type: "ack", id: ack.id, seq: positionOf(frame) });
      messages++;
    }
    // What one flush costs the room, for `npm run bench`: its own sends, and one call per shard at most.
    if (config.traceWakeups) log({ event: "fanout", room: this.parts.name, messages, sockets: sockets.size, shards: held.length });
  }

  /**
   * Queues a presence event, after the messages already waiting: a message
   * stored before someone left goes out before their leave. Events nobody
   * else is there to hear are dropped.
   */
  record(event: PresenceEvent): void {
    const { roster, config } = this.parts;
    if (event.kind !== "renamed" && roster.size <= (event.kind === "joined" ? 1 : 0)) return;
    this.flush();
    this.#presence.add(event);
    this.#presenceTimer ??= setTimeout(
      () => {
        try {
          this.flushPresence();
        } catch (error) {
          log({ event: "error", room: this.parts.name, handler: "presence", message: describe(error) });
        }
      },
      presenceWindowMs(config.presenceBatchMs, roster.size),
    );
  }

  /**
   * Sends a frame that is never stored (who is typing) to everyone, after
   * the presence news and messages before it, so that it never overtakes
   * them.
   */
  toEveryone(frame: ServerFrame): void {
    const { sockets, roster, shards } = this.parts;
    this.flushPresence();
    this.flush();
    sockets.fanOut(frame);
    for (const k of roster.shards()) shards.push(k, { frame });
  }

  /**
   * Sends a frame that is never stored to these members, on whichever
   * object holds each, after the messages before it. Presence news may
   * still wait for its window: these frames say nothing it could contradict.
   */
  toSome(entries: Entry[], frame: ServerFrame): void {
    const { sockets, shards } = this.parts;
    this.flush();
    for (const entry of entries) {
      if (entry.shard !== 0) shards.push(entry.shard, { frame, to: entry.id });
      else {
        const ws = sockets.socketOf(entry.id);
        if (ws !== undefined) sockets.send(ws, frame);
      }
    }
  }

  /** The member with this id was just shown the user list: the presence news so far is not news to them. */
  known(memberId: string): void {
    this.#presence.known(memberId);
  }

  /** Sends the pending presence events to everyone, as one frame each, and to each shard as one item. */
  flushPresence(): void {
    const { sockets, roster, shards, config } = this.parts;
    if (this.#presenceTimer !== undefined) clearTimeout(this.#presenceTimer);
    this.#presenceTimer = undefined;
    const pending = this.#presence.take();
    if (pending.events.length === 0) return;
    const online = roster.size;
    const at = Date.now();
    const named = online <= config.announceLimit;
    const batch = new PresenceBatch(pending, online, at, named);
    sockets.toEach((_, member) => batch.for(member.id)?.in(member.format) ?? null);
    const presence = { events: pending.events, known: Array.from(pending.known), online, at, named };
    for (const k of roster.shards()) shards.push(k, { presence });
  }
}
