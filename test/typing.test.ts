import { env, evictDurableObject, runInDurableObject } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { signToken } from "../src/auth/grant";
import { TYPING_USERS_SHOWN, type TypingFrame, type User } from "../src/protocol";
import type { Room } from "../src/room/room";
import { TypingSet } from "../src/room/typing";
import { Client, uniqueRoom } from "./support/client";
import { waitFor } from "./support/frames";
import { frozenClock, heldTimers, type HeldTimers } from "./support/clock";

const SECRET = "runtime-test-secret"; // as set for the runtime tests in vitest.config.ts

// The room's batch windows are 50 ms here: timers of that or longer are held
// until a test runs them, so that a test decides where a window ends.
const WINDOW_MS = 50;

const user = (id: string, name: string): User => ({ id, name });
const typing = (users: User[], started: User[] = [], count = users.length): TypingFrame => ({ type: "typing", users, count, started });

/** Waits until the room has handled everything `client` sent before: its answer to a `who` comes after. */
async function handled(client: Client): Promise<void> {
  client.send({ type: "who", id: "sync" });
  await client.skipTo("users");
}

/** A room whose timers of a window or longer wait for the test to run them (`HeldTimers`). */
function heldRoom(label: string): { room: string; timers: HeldTimers; run(): Promise<void> } {
  const room = uniqueRoom(label);
  const timers = heldTimers(WINDOW_MS);
  return { room, timers, run: () => timers.run(env.ROOMS.getByName(room)) };
}

/** Sends a frame from `client` that the room answers only when refused, waits until the room has handled it, and runs `after`. */
async function sendQuietly(client: Client, frame: object, after?: () => Promise<void>): Promise<void> {
  client.send(frame);
  await handled(client);
  await after?.();
}

describe("typing", () => {
  it("shows everyone, typers included, who types whenever that changes, and nothing for a renewal", async () => {
    const { room, timers, run } = heldRoom("typing");
    const ann = await Client.join(`/rooms/${room}?name=ann`);
    const bob = await Client.join(`/rooms/${room}?name=bob`);

    await sendQuietly(ann, { type: "typing" }, run);
    for (const client of [ann, bob]) expect(await client.skipTo("typing")).toEqual(typing([user("1", "ann")], [user("1", "ann")]));

    await sendQuietly(ann, { type: "typing" }, run);
    await sendQuietly(bob, { type: "typing" }, run);
    const both = typing([user("1", "ann"), user("2", "bob")], [user("2", "bob")]);
    for (const client of [ann, bob]) expect(await client.skipTo("typing")).toEqual(both);

    await sendQuietly(ann, { type: "typing", stop: true }, run);
    for (const client of [ann, bob]) expect(await client.skipTo("typing")).toEqual(typing([user("2", "bob")]));
    await sendQuietly(bob, { type: "typing", stop: true }, run);
    for (const client of [ann, bob]) expect(await client.skipTo("typing")).toEqual(typing([]));
    expect(timers.delays(), "timers left once nobody types").toEqual([]);
  });

  it("sends nothing for someone who began and stopped within one window", async () => {
    const { room, run } = heldRoom("typing-blink");
    const ann = await Client.join(`/rooms/${room}?name=ann`);
    const bob = await Client.join(`/rooms/${room}?name=bob`);
    ann.send({ type: "typing" });
    await sendQuietly(ann, { type: "typing", stop: true }, run);
    await sendQuietly(bob, { type: "typing" }, run);
    expect(await ann.skipTo("typing")).toEqual(typing([user("2", "bob")], [user("2", "bob")]));
  });

  it("stops when the typer's message goes out, after the message", async () => {
    const { room, run } = heldRoom("typing-message");
    const ann = await Client.join(`/rooms/${room}?name=ann`);
    const bob = await Client.join(`/rooms/${room}?name=bob`);
    await sendQuietly(ann, { type: "typing" }, run);
    await bob.skipTo("typing");
    ann.send("hello");
    expect(await bob.next("message")).toMatchObject({ seq: 1, text: "hello" });
    await run();
    expect(await bob.next("typing")).toEqual(typing([]));
  });

  it("ends by itself TYPING_SECONDS after the last typing frame, with one timer that is there only while someone types", async () => {
    const clock = frozenClock();
    const { room, timers, run } = heldRoom("typing-expiry");
    const ann = await Client.join(`/rooms/${room}?name=ann`);
    const bob = await Client.join(`/rooms/${room}?name=bob`);
    await run();
    expect(timers.delays(), "timers before anyone types").toEqual([]);

    await sendQuietly(ann, { type: "typing" });
    expect(timers.delays(), "the window, and the end of ann's typing").toEqual([WINDOW_MS, 6000]);
    await run();
    expect(await bob.skipTo("typing")).toEqual(typing([user("1", "ann")], [user("1", "ann")]));

    clock.advance(4000);
    await sendQuietly(ann, { type: "typing" });
    await sendQuietly(bob, { type: "typing" });
    clock.advance(2000);
    // Ann's first typing would have run out now, but she renewed it: the timer finds nobody done, and waits for the renewal's end.
    await run();
    expect(await bob.skipTo("typing")).toEqual(typing([user("1", "ann"), user("2", "bob")], [user("2", "bob")]));
    expect(timers.delays(), "the timer once it found nobody's typing over").toEqual([4000]);
    clock.advance(4000);
    // The end of their typing, then the window it opened.
    await run();
    await run();
    expect(await bob.skipTo("typing")).toEqual(typing([]));
    expect(timers.delays(), "timers once nobody types").toEqual([]);
  });

  it("stops when the typer leaves, after the news that they left", async () => {
    const { room, timers, run } = heldRoom("typing-leave");
    const ann = await Client.join(`/rooms/${room}?name=ann`);
    const bob = await Client.join(`/rooms/${room}?name=bob`);
    await sendQuietly(ann, { type: "typing" }, run);
    await bob.skipTo("typing");
    ann.close();
    // Its leave and the change to who types wait for their windows.
    await waitFor(
      () => timers.delays().length === 2,
      () => `the windows of ann's leave; the room holds timers of ${timers.delays().join(", ")} ms`,
    );
    await run();
    expect(await bob.next("presence")).toMatchObject({ left: [{ user: { name: "ann" }, reason: "closed" }] });
    expect(await bob.next("typing")).toEqual(typing([]));
    expect(timers.delays(), "timers once nobody types").toEqual([]);
  });

  it("shows a newcomer who types as they come in, after their history", async () => {
    const { room, run } = heldRoom("typing-newcomer");
    const ann = await Client.join(`/rooms/${room}?name=ann`);
    await sendQuietly(ann, { type: "typing" }, run);
    const cat = await Client.connect(`/rooms/${room}?name=cat`);
    await cat.next("welcome");
    await cat.next("history");
    expect(await cat.next("typing")).toEqual(typing([user("1", "ann")]));
  });

  it("names someone who renamed while typing by the new name at the next change", async () => {
    const { room, run } = heldRoom("typing-rename");
    const ann = await Client.join(`/rooms/${room}?name=ann`);
    const bob = await Client.join(`/rooms/${room}?name=bob`);
    await sendQuietly(ann, { type: "typing" }, run);
    await bob.skipTo("typing");
    await sendQuietly(ann, { type: "rename", name: "annie" }, run);
    await sendQuietly(bob, { type: "typing" }, run);
    expect(await bob.skipTo("typing")).toEqual(typing([user("1", "annie"), user("2", "bob")], [user("2", "bob")]));
  });

  it("prints one line per burst in the text format, and nothing when someone stops", async () => {
    const { room, run } = heldRoom("typing-text");
    const ann = await Client.join(`/rooms/${room}?name=ann`);
    const bob = await Client.join(`/rooms/${room}?name=bob`);
    const jay = await Client.join(`/rooms/${room}?name=jay`);
    const tex = await Client.join(`/rooms/${room}?name=tex&format=text`);
    const [annUser, bobUser] = [user("1", "ann"), user("2", "bob")];

    await sendQuietly(ann, { type: "typing" }, run);
    expect(await tex.nextText()).toBe("ann is typing…");
    await sendQuietly(ann, { type: "typing" }, run);
    await sendQuietly(bob, { type: "typing" }, run);
    expect(await tex.nextText()).toBe("bob is typing…");
    await sendQuietly(ann, { type: "typing", stop: true }, run);
    await sendQuietly(ann, { type: "typing" }, run);
    expect(await tex.nextText()).toBe("ann is typing…");
    // What went to everyone, the stop included, which tex got no line for.
    expect(await jay.skipTo("typing")).toEqual(typing([annUser], [annUser]));
    expect(await jay.skipTo("typing")).toEqual(typing([annUser, bobUser], [bobUser]));
    expect(await jay.skipTo("typing")).toEqual(typing([bobUser]));
    expect(await jay.skipTo("typing")).toEqual(typing([bobUser, annUser], [annUser]));
  });

  it("lists the first TYPING_USERS_SHOWN typers and counts them all, in one frame per window", async () => {
    const { room, run } = heldRoom("typing-crowd");
    const watcher = await Client.join(`/rooms/${room}?name=watcher`);
    const typers: Client[] = [];
    for (let i = 0; i < 7; i++) typers.push(await Client.join(`/rooms/${room}?name=t${i}`));
    await run();

    for (const typer of typers) await sendQuietly(typer, { type: "typing" });
    await run();
    const first = Array.from({ length: TYPING_USERS_SHOWN }, (_, i) => user(String(i + 2), `t${i}`));
    expect(await watcher.skipTo("typing")).toEqual(typing(first, first, 7));
    // Nothing else came in the window: the answer to this is next.
    watcher.send({ type: "who" });
    await watcher.next("users");
  });

  it("refuses a muted member's typing with muted, and shows nothing", async () => {
    const { room, run } = heldRoom("typing-muted");
    const token = await signToken(SECRET, { room, name: "mod", role: "moderator", sub: "mod-1", exp: Math.floor(Date.now() / 1000) + 3600 });
    const mod = await Client.join(`/rooms/${room}?token=${token}`);
    const bob = await Client.join(`/rooms/${room}?name=bob`);
    mod.send({ type: "mute", user: "2", seconds: 60 });
    await mod.skipTo("moderated");
    bob.send({ type: "typing", id: "t-1" });
    expect(await bob.skipTo("error")).toMatchObject({ id: "t-1", code: "muted" });
    await sendQuietly(mod, { type: "typing" }, run);
    const shown = { id: "1", name: "mod", verified: true, account: "mod-1", moderator: true } as const;
    expect(await bob.skipTo("typing")).toEqual(typing([shown], [shown]));
  });

  it.each([
    ["a moderator's frame", "socket"],
    ["the HTTP API", "http"],
  ])("ends the typing of someone muted through %s", async (_, path) => {
    const { room, run } = heldRoom(`typing-mute-ends-${path}`);
    const token = await signToken(SECRET, { room, name: "mod", role: "moderator", sub: "mod-1", exp: Math.floor(Date.now() / 1000) + 3600 });
    const mod = await Client.join(`/rooms/${room}?token=${token}`);
    const bob = await Client.join(`/rooms/${room}?name=bob`);
    await sendQuietly(bob, { type: "typing" }, run);
    const shown = user("2", "bob");
    expect(await mod.skipTo("typing")).toEqual(typing([shown], [shown]));
    const mute = { type: "mute", user: "2", seconds: 60 };
    if (path === "socket") {
      mod.send(mute);
      await mod.skipTo("moderated");
    } else {
      const response = await exports.default.fetch(`http://chat.test/api/rooms/${room}/moderation`, {
        method: "POST",
        headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
        body: JSON.stringify(mute),
      });
      expect(response.status).toBe(200);
    }
    await run();
    expect(await mod.skipTo("typing")).toEqual(typing([]));
  });

  it("keeps the room awake until the last typing ends, and takes no number in its sequence", async () => {
    const room = uniqueRoom("typing-sleep");
    const ann = await Client.join(`/rooms/${room}?name=ann`);
    const bob = await Client.join(`/rooms/${room}?name=bob`);
    ann.send({ type: "typing" });
    for (const client of [ann, bob]) expect(await client.skipTo("typing")).toEqual(typing([user("1", "ann")], [user("1", "ann")]));

    // The room cannot hibernate while ann types: her typing runs out first, and nothing then keeps it awake.
    const stub = env.ROOMS.getByName(room);
    const marker = Symbol("before eviction");
    await runInDurableObject(stub, (instance: Room) => Object.assign(instance, { [marker]: true }));
    await evictDurableObject(stub, { webSockets: "hibernate" });
    expect(await runInDurableObject(stub, (instance: Room) => marker in instance), "the same instance after eviction").toBe(false);
    for (const client of [ann, bob]) expect(await client.next("typing")).toEqual(typing([]));
    bob.send({ type: "typing" });
    for (const client of [ann, bob]) expect(await client.next("typing")).toEqual(typing([user("2", "bob")], [user("2", "bob")]));
    ann.send("hello");
    for (const client of [ann, bob]) expect(await client.next("message")).toMatchObject({ seq: 1, text: "hello" });
    for (const client of [ann, bob]) expect(client.frames.filter((f) => f.includes('"error"'))).toEqual([]);
  });
});

describe("TypingSet", () => {
  const users = new Map(["1", "2", "3"].map((id) => [id, user(id, `u${id}`)]));
  const userOf = (id: string) => users.get(id);

  it("has a frame only when what it shows changed since the last one", () => {
    const set = new TypingSet();
    expect(set.take(userOf)).toBeNull();
    set.start("1", 6000);
    expect(set.take(userOf)).toEqual(typing([user("1", "u1")], [user("1", "u1")]));
    set.start("1", 9000);
    expect(set.take(userOf)).toBeNull();
    set.start("2", 9000);
    set.stop("2");
    expect(set.take(userOf)).toBeNull();
    set.stop("1");
    expect(set.take(userOf)).toEqual(typing([]));
  });

  it("ends typing that ran out, and says when the next one does", () => {
    const set = new TypingSet();
    set.start("1", 6000);
    set.start("2", 7000);
    set.start("1", 8000);
    expect(set.nextEnd()).toBe(7000);
    expect(set.expire(6999)).toBe(false);
    expect(set.expire(7000)).toBe(true);
    expect(set.nextEnd()).toBe(8000);
    expect(set.expire(8000)).toBe(true);
    expect(set.nextEnd()).toBeNull();
  });
});
