import { env, evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { Room } from "../src/room/room";
import { Client, uniqueRoom } from "./support/client";
import { frozenClock } from "./support/clock";

const alarmOf = (room: string) => runInDurableObject(env.ROOMS.getByName(room), (_, state) => state.storage.getAlarm());

describe("the tick", () => {
  it("reaches every socket in its format and schedules the next one", async () => {
    const room = uniqueRoom("tick");
    const ann = await Client.join(`/rooms/${room}?name=ann`);
    const tex = await Client.join(`/rooms/${room}?name=tex&format=text`);
    await ann.presence({ joined: 1 });
    const before = Date.now();

    expect(await runDurableObjectAlarm(env.ROOMS.getByName(room))).toBe(true);

    const tick = await ann.next("tick");
    expect(tick.online).toBe(2);
    expect(tick.now).toBeGreaterThanOrEqual(before);
    expect(await tex.nextText()).toMatch(/^Time: \d{4}-\d\d-\d\dT[\d:.]+Z\. Online: 2$/);
    const next = await alarmOf(room);
    expect(next).toBeGreaterThanOrEqual(before + 30_000);
    expect(next).toBeLessThanOrEqual(Date.now() + 30_000);
  });

  it("is scheduled when the first socket joins", async () => {
    const room = uniqueRoom("first-join");
    const before = Date.now();
    await Client.join(`/rooms/${room}`);
    expect(await alarmOf(room)).toBeGreaterThanOrEqual(before + 30_000);
  });
});

describe("the sweep", () => {
  it("closes a pinging socket that went silent with 4000 and announces it; spares the rest", async () => {
    const room = uniqueRoom("sweep");
    const ann = await Client.join(`/rooms/${room}?name=ann`); // pings, then goes silent
    const bob = await Client.join(`/rooms/${room}?name=bob`); // talks but never pings: a raw client
    const cat = await Client.join(`/rooms/${room}?name=cat`); // pings, then keeps talking
    await ann.presence({ joined: 2 });
    await bob.presence({ joined: 1 });
    bob.send("hello from a raw client");
    for (const client of [ann, bob, cat]) await client.next("message");
    for (const client of [ann, cat]) {
      client.send("ping");
      expect(await client.nextText()).toBe("pong");
    }

    const clock = frozenClock();
    clock.advance(40_000);
    cat.send("still here");
    for (const client of [ann, bob, cat]) await client.next("message");
    // The time of cat's last frame must survive hibernation, or cat would be swept too.
    await evictDurableObject(env.ROOMS.getByName(room), { webSockets: "hibernate" });

    clock.advance(30_000);
    await runDurableObjectAlarm(env.ROOMS.getByName(room));

    const closed = await ann.closed();
    expect(closed.code).toBe(4000);
    for (const client of [bob, cat]) {
      expect(await client.next("presence")).toMatchObject({ left: [{ user: { id: "1", name: "ann" }, reason: "timeout" }], online: 2 });
      expect(await client.next("tick")).toMatchObject({ online: 2 });
    }
    cat.send({ type: "who" });
    expect((await cat.next("users")).users.map((u) => u.name)).toEqual(["bob", "cat"]);
  });

  it("closes a socket that has sent nothing at all, not even a ping, once the timeout has passed since it joined", async () => {
    const room = uniqueRoom("sweep-mute");
    const clock = frozenClock();
    const lurker = await Client.join(`/rooms/${room}?name=lurker`);
    const ann = await Client.join(`/rooms/${room}?name=ann`);
    ann.send("ping");
    expect(await ann.nextText()).toBe("pong");

    clock.advance(59_000);
    await runDurableObjectAlarm(env.ROOMS.getByName(room));
    expect(await ann.next("tick")).toMatchObject({ online: 2 });

    clock.advance(1_000);
    ann.send("still here");
    await ann.next("message");
    await evictDurableObject(env.ROOMS.getByName(room), { webSockets: "hibernate" });
    await runDurableObjectAlarm(env.ROOMS.getByName(room));
    expect((await lurker.closed()).code).toBe(4000);
    expect(await ann.next("presence")).toMatchObject({ left: [{ user: { name: "lurker" }, reason: "timeout" }] });
  });

  it("is idempotent: a retried alarm announces nothing twice", async () => {
    const room = uniqueRoom("retry");
    const stub = env.ROOMS.getByName(room);
    const ann = await Client.join(`/rooms/${room}?name=ann`);
    const bob = await Client.join(`/rooms/${room}?name=bob`);
    await ann.presence({ joined: 1 });
    ann.send("ping");
    expect(await ann.nextText()).toBe("pong");
    bob.send("here");
    await bob.next("message");

    frozenClock().advance(61_000);
    await runDurableObjectAlarm(stub);
    // The runtime retries an alarm it thinks failed; the room does not know which run is which.
    await runInDurableObject(stub, (instance: Room) => instance.alarm());

    expect((await ann.closed()).code).toBe(4000);
    expect(await bob.next("presence")).toMatchObject({ left: [{ user: { name: "ann" } }] });
    expect(await bob.next("tick")).toMatchObject({ online: 1 });
    expect(await bob.next("tick")).toMatchObject({ online: 1 });
    bob.send({ type: "who" });
    expect(await bob.next("users")).toMatchObject({ online: 1 });
  });
});

describe("an empty room", () => {
  it("does not reschedule the alarm", async () => {
    const room = uniqueRoom("empty");
    const stub = env.ROOMS.getByName(room);
    await runInDurableObject(stub, (_, state) => state.storage.setAlarm(Date.now() + 1_000));
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await alarmOf(room)).toBeNull();
  });

  it("has no alarm once the last socket was swept", async () => {
    const room = uniqueRoom("swept-empty");
    const ann = await Client.join(`/rooms/${room}?name=ann`);
    ann.send("ping");
    expect(await ann.nextText()).toBe("pong");
    frozenClock().advance(61_000);
    await runDurableObjectAlarm(env.ROOMS.getByName(room));
    expect((await ann.closed()).code).toBe(4000);
    expect(await alarmOf(room)).toBeNull();
  });
});
