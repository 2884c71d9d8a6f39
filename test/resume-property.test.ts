import { env, evictDurableObject, runInDurableObject } from "cloudflare:test";
import { expect, it } from "vitest";
import type { MessageFrame, ServerFrame } from "../src/protocol";
import type { Room } from "../src/room/room";
import { Client, caller, read } from "./support/client";
import { fastClock, seededRandom } from "./support/clock";
import { waitFor } from "./support/frames";

/**
 * A person's app: one stable client id, a log of every message it has shown,
 * the messages it sent but has no ack for, and at most one socket at a time.
 * It resumes with `since` and resends unacknowledged messages, as a client
 * should.
 */
class App {
  readonly log: MessageFrame[] = [];
  readonly pending = new Map<string, string>();
  socket: Client | null = null;
  #read = 0;
  #sent = 0;

  constructor(
    readonly room: string,
    readonly name: string,
  ) {}

  get lastSeq(): number {
    return this.log.at(-1)?.seq ?? 0;
  }

  get connected(): boolean {
    return this.socket !== null && this.socket.closeEvent === null;
  }

  async connect(): Promise<void> {
    this.socket = await Client.connect(`/rooms/${this.room}?name=${this.name}&client=${this.name}&since=${this.lastSeq}`);
    this.#read = 0;
    await this.socket.next("welcome");
    for (const [id, text] of this.pending) this.socket.send({ type: "message", text, id });
  }

  send(): void {
    const id = `${this.name}-${++this.#sent}`;
    const text = `${this.name} says ${this.#sent}`;
    this.pending.set(id, text);
    this.socket!.send({ type: "message", text, id });
  }

  /** Takes in every frame that has arrived; a message it already has would be a duplicate. */
  drain(): void {
    const frames = this.socket?.frames ?? [];
    for (; this.#read < frames.length; this.#read++) {
      if (frames[this.#read] === "pong") continue;
      const frame = JSON.parse(frames[this.#read]!) as ServerFrame;
      if (frame.type === "history") for (const m of frame.messages) this.#show(m);
      if (frame.type === "message") this.#show(frame);
      if (frame.type === "ack") this.pending.delete(frame.id);
    }
  }

  #show(message: MessageFrame): void {
    expect(message.seq, `${this.name} got seq ${message.seq} after ${this.lastSeq}`).toBe(this.lastSeq + 1);
    this.log.push(message);
  }

  /** After an object was reset: waits until this socket is either closed or still answers. */
  async probe(): Promise<void> {
    const socket = this.socket;
    if (socket === null || socket.closeEvent !== null) return;
    const pongs = () => socket.frames.filter((f) => f === "pong").length;
    const before = pongs();
    socket.send("ping");
    await waitFor(
      () => socket.closeEvent !== null || pongs() > before,
      () => `${this.name}'s pong or close after a reset`,
    );
  }

  async disconnect(): Promise<void> {
    this.socket!.close();
    await this.socket!.closed();
    this.drain();
  }
}

/** Evicts an object if it is running; one that already hibernated, or never ran, has nothing to evict. */
async function evict(stub: DurableObjectStub, webSockets: "hibernate" | "close"): Promise<boolean> {
  try {
    await evictDurableObject(stub, { webSockets });
    return true;
  } catch (error) {
    if (String(error).includes("not currently running")) return false;
    throw error;
  }
}

// Runs in two projects: with every socket on the room object, and with
// SHARD_SIZE=3, where the seven clients fill the room and two shards, and
// each eviction hits one of the three objects.
it("every client's log equals the room's, through random sends, drops, reconnects and evictions", async () => {
  fastClock();
  const seed = 20261122;
  const next = seededRandom(seed);
  const room = `property-${seed}`;
  const stub = env.ROOMS.getByName(room);
  const objects: DurableObjectStub[] = [stub, env.SHARDS.getByName(`${room}#1`), env.SHARDS.getByName(`${room}#2`)];
  const pick = () => objects[Math.floor(next() * objects.length)]!;
  let shardsEvicted = 0;
  const evictOne = async (webSockets: "hibernate" | "close") => {
    const target = pick();
    const evicted = await evict(target, webSockets);
    if (evicted && target !== stub) shardsEvicted++;
    return evicted;
  };
  const apps = ["ann", "bob", "cat", "dan", "eve", "fay", "gus"].map((name) => new App(room, name));
  for (const app of apps) await app.connect();

  for (let step = 0; step < 300; step++) {
    const app = apps[Math.floor(next() * apps.length)]!;
    const roll = next();
    if (roll < 0.6) {
      if (app.connected) app.send();
      else await app.connect();
    } else if (roll < 0.75) {
      if (app.connected) await app.disconnect();
      else await app.connect();
    } else if (roll < 0.85) {
      await evictOne("hibernate");
    } else if (roll < 0.9) {
      // A reset: the object's sockets are dropped, and what was in flight may or may not have been stored.
      if (await evictOne("close")) for (const other of apps) await other.probe();
    } else {
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    for (const other of apps) other.drain();
  }

  // Everyone comes back and waits until nothing is pending and all is seen.
  for (const app of apps) if (!app.connected) await app.connect();
  const done = () =>
    apps.every((app) => {
      app.drain();
      return app.pending.size === 0;
    });
  await expect.poll(done).toBe(true);
  const lastSeq = await runInDurableObject(stub, (instance: Room) => read(instance.info(caller())).lastSeq);
  await expect
    .poll(() =>
      apps.every((app) => {
        app.drain();
        return app.lastSeq === lastSeq;
      }),
    )
    .toBe(true);

  const roomLog = await runInDurableObject(stub, (instance: Room) => read(instance.messages(0, lastSeq, caller())).messages);
  expect(roomLog.map((m) => m.seq)).toEqual(Array.from({ length: lastSeq }, (_, i) => i + 1));
  for (const app of apps) expect(app.log).toEqual(roomLog);

  // Every message a client sent was stored exactly once, whatever was resent.
  const texts = roomLog.map((m) => m.text);
  expect(new Set(texts).size).toBe(texts.length);
  expect(lastSeq).toBeGreaterThan(100);
  // With shards, evictions hit them too, not only the room.
  if (Number(env.SHARD_SIZE ?? 1000) < apps.length) expect(shardsEvicted).toBeGreaterThan(5);
});
