import { env, evictDurableObject, runInDurableObject } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import { Room } from "../src/room/room";
import { Client, uniqueRoom } from "./support/client";

/** Evicts the room as the runtime does when it hibernates, and proves a new instance took over. */
async function hibernate(room: string): Promise<void> {
  const stub = env.ROOMS.getByName(room);
  const marker = Symbol("before eviction");
  await runInDurableObject(stub, (instance: Room) => {
    Object.assign(instance, { [marker]: true });
  });
  await evictDurableObject(stub, { webSockets: "hibernate" });
  expect(await runInDurableObject(stub, (instance: Room) => marker in instance)).toBe(false);
}

describe("a room that hibernated", () => {
  it("keeps names, ids, the user list, the counter and broadcasting", async () => {
    const room = uniqueRoom("sleepy");
    const ann = await Client.join(`/rooms/${room}?name=ann`);
    const bob = await Client.join(`/rooms/${room}?name=bob&format=text`);
    await ann.presence({ joined: 1 });

    await hibernate(room);

    bob.send("good morning");
    expect(await ann.next("message")).toMatchObject({ user: { id: "2", name: "bob" }, text: "good morning" });
    expect(await bob.nextText()).toBe("bob: good morning");

    ann.send({ type: "who" });
    expect((await ann.next("users")).users).toEqual([
      { id: "1", name: "ann" },
      { id: "2", name: "bob" },
    ]);

    await hibernate(room);

    const cat = await Client.connect(`/rooms/${room}`);
    expect(await cat.next("welcome")).toMatchObject({
      you: { id: "3", name: "User #3" },
      users: [
        { id: "1", name: "ann" },
        { id: "2", name: "bob" },
        { id: "3", name: "User #3" },
      ],
    });
    expect(await ann.next("presence")).toMatchObject({ joined: [{ id: "3" }], online: 3 });
    expect(await bob.nextText()).toBe("User #3 entered the chat room.");
  });

  it("is not entered in the middle of a presence batch: the batch goes out first, and nobody hears a join twice", async () => {
    const room = uniqueRoom("sleepy-batch");
    const ann = await Client.join(`/rooms/${room}?name=ann`);
    const bob = await Client.join(`/rooms/${room}?name=bob`);
    await Client.join(`/rooms/${room}?name=cat`);

    // Asked at once: the batch with bob and cat is most likely still open,
    // and its timer holds the room awake until it has gone out.
    await hibernate(room);

    expect((await ann.presence({ joined: 2 })).joined.map((u) => u.name)).toEqual(["bob", "cat"]);
    await Client.join(`/rooms/${room}?name=dan`);
    expect((await ann.next("presence")).joined).toEqual([{ id: "4", name: "dan" }]);
    expect((await bob.presence({ joined: 2 })).joined.map((u) => u.name)).toEqual(["cat", "dan"]);
    ann.send({ type: "who" });
    expect((await ann.next("users")).users.map((u) => u.name)).toEqual(["ann", "bob", "cat", "dan"]);
    expect(ann.unread()).toEqual([]);
  });

  it("answers a close after waking and announces the leave once", async () => {
    const room = uniqueRoom("sleepy-close");
    const ann = await Client.join(`/rooms/${room}?name=ann`);
    const bob = await Client.join(`/rooms/${room}?name=bob`);
    await ann.presence({ joined: 1 });

    await hibernate(room);

    bob.close(1000, "done");
    expect((await bob.closed()).code).toBe(1000);
    expect(await ann.next("presence")).toMatchObject({ left: [{ user: { id: "2", name: "bob" } }], online: 1 });
    ann.send({ type: "who" });
    expect(await ann.next("users")).toMatchObject({ online: 1 });
  });
});

describe("heartbeats", () => {
  it("answers ping with pong without running the room's handler", async () => {
    const room = uniqueRoom("ping");
    const handler = vi.spyOn(Room.prototype, "webSocketMessage");
    const ann = await Client.join(`/rooms/${room}?name=ann`);
    ann.send("ping");
    expect(await ann.nextText()).toBe("pong");

    await hibernate(room);
    ann.send("ping");
    expect(await ann.nextText()).toBe("pong");
    expect(handler).not.toHaveBeenCalled();

    // Only the exact frame is a heartbeat; anything else is chat.
    ann.send("ping!");
    expect(await ann.next("message")).toMatchObject({ text: "ping!" });
    expect(handler).toHaveBeenCalledTimes(1);
  });
});
