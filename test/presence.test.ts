import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { PresenceBatch, PresenceQueue, presenceWindowMs } from "../src/room/presence";
import type { User } from "../src/protocol";
import type { Room } from "../src/room/room";
import { Client, uniqueRoom, caller, read } from "./support/client";

// This project's batch window never ends by itself (vitest.config.ts): a
// batch ends when the room broadcasts a message or a tick, which sends
// what came before it first. (Nor can such a room be evicted: the plugin's
// eviction waits for the window's timer, as hibernation does. Hibernation
// during a batch is tested with the default window in hibernation.test.ts.)

const stubOf = (room: string) => env.ROOMS.getByName(room);

/** Connects and reads the welcome and the history; returns the client and who it is. */
async function arrive(room: string, name: string): Promise<{ client: Client; you: User; users: User[] }> {
  const client = await Client.connect(`/rooms/${room}?name=${name}`);
  const { you, users } = await client.next("welcome");
  await client.next("history");
  return { client, you, users };
}

describe("a join storm", () => {
  it("reaches an observer as one frame that names each of 50 newcomers once, and each newcomer hears only of those after it", async () => {
    const room = uniqueRoom("storm");
    const observer = await Client.join(`/rooms/${room}?name=observer`);
    const crowd = await Promise.all(Array.from({ length: 50 }, (_, i) => arrive(room, `p${i}`)));

    observer.send("after the storm");
    const news = await observer.next("presence");
    expect(news.joined.map((u) => u.id).sort()).toEqual(crowd.map((c) => c.you.id).sort());
    expect(news).toMatchObject({ left: [], renamed: [], online: 51 });
    expect((await observer.next("message")).text).toBe("after the storm");

    for (const { client, you } of crowd) {
      const later = crowd.filter((c) => Number(c.you.id) > Number(you.id)).map((c) => c.you.id);
      const first = await client.next(later.length > 0 ? "presence" : "message");
      if (first.type === "presence") {
        expect(first.joined.map((u) => u.id)).toEqual(later.sort((a, b) => Number(a) - Number(b)));
        await client.next("message");
      }
    }
  });
});

describe("a presence batch", () => {
  it("keeps a leave in the middle of it, and tells a newcomer only what happened after its welcome", async () => {
    const room = uniqueRoom("leave-in-batch");
    const observer = await Client.join(`/rooms/${room}?name=observer`);
    const ann = await arrive(room, "ann");
    const bob = await arrive(room, "bob");
    ann.client.close();
    await ann.client.closed();
    const cat = await arrive(room, "cat");
    expect(cat.users.map((u) => u.name)).toEqual(["observer", "bob", "cat"]);

    // A tick ends the batch too, and comes after it.
    await runDurableObjectAlarm(stubOf(room));
    expect(await observer.next("presence")).toMatchObject({
      joined: [ann.you, bob.you, cat.you],
      left: [{ user: ann.you, reason: "closed" }],
      online: 3,
    });
    expect(await observer.next("tick")).toMatchObject({ online: 3 });
    expect(await bob.client.next("presence")).toMatchObject({ joined: [cat.you], left: [{ user: ann.you }] });
    expect(await cat.client.next("tick")).toMatchObject({ online: 3 });
  });

  it("never lets a newcomer's message arrive before the news of their join, nor a leaver's after their leave", async () => {
    const room = uniqueRoom("order");
    const observer = await Client.join(`/rooms/${room}?name=observer`);
    const dan = await arrive(room, "dan");
    dan.client.send("hello, I'm new");
    expect(await observer.next("presence")).toMatchObject({ joined: [dan.you] });
    expect(await observer.next("message")).toMatchObject({ user: dan.you, text: "hello, I'm new" });

    dan.client.send("bye");
    dan.client.close();
    await dan.client.closed();
    observer.send("see you");
    expect(await observer.next("message")).toMatchObject({ text: "bye" });
    expect(await observer.next("presence")).toMatchObject({ joined: [], left: [{ user: dan.you }] });
    expect(await observer.next("message")).toMatchObject({ text: "see you" });
  });
});

describe("a crowded room", () => {
  it("lists the first PRESENCE_LIST_LIMIT people in the welcome, and who pages through everyone else once", async () => {
    const room = uniqueRoom("pages");
    const present = await Promise.all(Array.from({ length: 24 }, (_, i) => arrive(room, `m${i}`)));
    const reader = await arrive(room, "reader");
    const client = reader.client;
    const listed: User[] = [...reader.users];
    expect(reader.users).toHaveLength(10);
    const { more, online } = JSON.parse(client.frames[0]!) as { more: boolean; online: number };
    expect({ more, online }).toEqual({ more: true, online: 25 });

    client.send({ type: "who", after: listed.at(-1)!.id });
    const second = await client.next("users");
    expect(second).toMatchObject({ more: true, online: 25 });
    listed.push(...second.users);
    // People come and go between pages.
    present[2]!.client.close();
    await present[2]!.client.closed();
    const late = await arrive(room, "late");
    client.send({ type: "who", after: listed.at(-1)!.id });
    const third = await client.next("users");
    expect(third.more).toBe(false);
    listed.push(...third.users);

    const ids = listed.map((u) => u.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toEqual([...ids].sort((a, b) => Number(a) - Number(b)));
    const info = await runInDurableObject(stubOf(room), (instance: Room) => read(instance.info(caller())));
    // Everyone there now was listed, and the one listed who has left since is the one presence will report.
    expect(info.users.every((u) => ids.includes(u.id))).toBe(true);
    expect(ids.filter((id) => !info.users.some((u) => u.id === id))).toEqual([present[2]!.you.id]);
    expect(ids).toContain(late.you.id);
  });

  it("names nobody above ANNOUNCE_LIMIT: members learn the count, one frame per batch", async () => {
    const room = uniqueRoom("announce");
    const tex = await Client.join(`/rooms/${room}?name=tex&format=text`);
    const observer = await Client.join(`/rooms/${room}?name=observer`);
    const crowd = await Promise.all(Array.from({ length: 59 }, (_, i) => Client.join(`/rooms/${room}?name=c${i}`)));

    observer.send("61 of us");
    expect(await observer.next("presence")).toEqual({ type: "presence", joined: [], left: [], renamed: [], online: 61, at: expect.any(Number) });
    expect(await observer.next("message")).toMatchObject({ text: "61 of us" });
    expect(await tex.nextText()).toBe("Online: 61");
    expect(await tex.nextText()).toBe("observer: 61 of us");

    crowd[0]!.close();
    await crowd[0]!.closed();
    observer.send("60 of us");
    expect(await observer.next("presence")).toMatchObject({ left: [{ user: { name: "c0" } }], online: 60 });
    expect(await tex.nextText()).toBe("c0 left the chat room.");
  });
});

describe("PresenceBatch", () => {
  const [ann, bob, cat] = ["ann", "bob", "cat"].map((name, i) => ({ id: String(i + 1), name }));
  const queue = () => {
    const q = new PresenceQueue();
    q.add({ kind: "joined", user: bob! });
    q.add({ kind: "renamed", user: { ...ann!, name: "annie" }, from: "ann" });
    q.known(ann!.id);
    q.add({ kind: "joined", user: cat! });
    q.add({ kind: "left", user: bob!, reason: "timeout" });
    return q.take();
  };

  it("gives each member what happened after the list it was last shown, encoded once per distinct frame", () => {
    const batch = new PresenceBatch(queue(), 2, 7, true);
    const before = batch.for("9")!;
    expect(before.frame).toEqual({
      type: "presence",
      joined: [bob, cat],
      renamed: [{ user: { id: "1", name: "annie" }, from: "ann" }],
      left: [{ user: bob, reason: "timeout" }],
      online: 2,
      at: 7,
    });
    expect(batch.for("8")).toBe(before);
    expect(batch.for(ann!.id)!.frame).toMatchObject({ joined: [cat], renamed: [], left: [{ user: bob }] });
    expect(batch.for(bob!.id)!.frame).toMatchObject({ joined: [cat], renamed: [{ from: "ann" }], left: [{ user: bob }] });
    expect(batch.for(cat!.id)!.frame).toMatchObject({ joined: [], renamed: [], left: [{ user: bob }] });
  });

  it("names nobody in a room too large to, and sends one count to everyone with news", () => {
    const batch = new PresenceBatch(queue(), 600, 7, false);
    expect(batch.for("9")!.frame).toEqual({ type: "presence", joined: [], renamed: [], left: [], online: 600, at: 7 });
    expect(batch.for(cat!.id)).toBe(batch.for("9"));
  });

  it("sends nothing to a member who already knows it all, and nothing for an empty queue", () => {
    const q = new PresenceQueue();
    q.known(ann!.id);
    q.add({ kind: "joined", user: bob! });
    expect(new PresenceBatch(q.take(), 2, 0, true).for(bob!.id)).toBeNull();
    expect(new PresenceQueue().take()).toEqual({ events: [], known: new Map() });
  });
});

describe("presenceWindowMs", () => {
  it("is PRESENCE_BATCH_MS up to 50 people, then grows with the room", () => {
    expect([0, 1, 50, 75, 1000, 32_000].map((online) => presenceWindowMs(50, online))).toEqual([50, 50, 50, 75, 1000, 32_000]);
    expect(presenceWindowMs(0, 1000)).toBe(0);
  });
});
