import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import type { Room } from "../src/room/room";
import type { Member } from "../src/sockets/socket-set";
import { Client, uniqueRoom } from "./support/client";

describe("joining", () => {
  it("welcomes the newcomer with everyone online, then tells the others", async () => {
    const room = uniqueRoom("join");
    const ann = await Client.connect(`/rooms/${room}?name=ann`);
    const welcomeAnn = await ann.next("welcome");
    expect(welcomeAnn).toMatchObject({
      room,
      you: { id: "1", name: "ann" },
      users: [{ id: "1", name: "ann" }],
      tickSeconds: 30,
      typingSeconds: 6,
      limits: { framesPer10s: 20, frameBytes: 16384, messageChars: 2000, typingPer10s: 10, reactionsPer10s: 20 },
      lastSeq: 0,
    });
    expect(welcomeAnn.at).toBeTypeOf("number");
    await ann.next("history");

    const bob = await Client.connect(`/rooms/${room}?name=bob`);
    expect(await bob.next("welcome")).toMatchObject({
      you: { id: "2", name: "bob" },
      users: [
        { id: "1", name: "ann" },
        { id: "2", name: "bob" },
      ],
    });
    expect(await ann.next("presence")).toEqual({
      type: "presence",
      joined: [{ id: "2", name: "bob" }],
      left: [],
      renamed: [],
      online: 2,
      at: expect.any(Number),
    });
    await bob.next("history");
    expect(bob.unread()).toEqual([]);
  });

  it("names people without a name User #<n> from a per-room counter", async () => {
    const room = uniqueRoom("default-name");
    const first = await Client.connect(`/rooms/${room}`);
    expect((await first.next("welcome")).you).toEqual({ id: "1", name: "User #1" });
    await first.next("history");
    const second = await Client.connect(`/rooms/${room}`);
    expect((await second.next("welcome")).you).toEqual({ id: "2", name: "User #2" });
    await second.next("history");
    first.close();
    await second.presence({ left: 1 });
    const third = await Client.connect(`/rooms/${room}`);
    expect((await third.next("welcome")).you).toEqual({ id: "3", name: "User #3" });
    const elsewhere = await Client.connect(`/rooms/${uniqueRoom("default-name")}`);
    expect((await elsewhere.next("welcome")).you).toEqual({ id: "1", name: "User #1" });
  });

  it("lets two people share a display name: ids tell them apart", async () => {
    const room = uniqueRoom("same-name");
    const a = await Client.join(`/rooms/${room}?name=sam`);
    const b = await Client.connect(`/rooms/${room}?name=sam`);
    expect((await b.next("welcome")).users.map((u) => u.id)).toEqual(["1", "2"]);
    expect((await a.next("presence")).joined).toEqual([{ id: "2", name: "sam" }]);
  });
});

describe("messages", () => {
  it("relays plain text to everyone, the sender included", async () => {
    const room = uniqueRoom("relay");
    const ann = await Client.join(`/rooms/${room}?name=ann`);
    const bob = await Client.join(`/rooms/${room}?name=bob`);
    await ann.presence({ joined: 1 });
    ann.send("hello, bob");
    for (const client of [ann, bob]) {
      expect(await client.next("message")).toMatchObject({ user: { id: "1", name: "ann" }, text: "hello, bob" });
    }
  });

  it("relays JSON messages and acknowledges a client id to the sender only", async () => {
    const room = uniqueRoom("ack");
    const ann = await Client.join(`/rooms/${room}?name=ann`);
    const bob = await Client.join(`/rooms/${room}?name=bob`);
    await ann.presence({ joined: 1 });
    ann.send({ type: "message", text: "with id", id: "m-1" });
    expect(await ann.next("message")).toMatchObject({ text: "with id" });
    expect(await ann.next("ack")).toEqual({ type: "ack", id: "m-1", seq: 1 });
    bob.send({ type: "message", text: "without id" });
    expect(await bob.next("message")).toMatchObject({ text: "with id" });
    expect(await bob.next("message")).toMatchObject({ text: "without id" });
    expect(await ann.next("message")).toMatchObject({ text: "without id" });
    ann.send({ type: "who" });
    await ann.next("users");
    expect(bob.unread()).toEqual([]);
  });

  it("answers who with the user list, to the asker only", async () => {
    const room = uniqueRoom("who");
    const ann = await Client.join(`/rooms/${room}?name=ann`);
    const bob = await Client.join(`/rooms/${room}?name=bob`);
    await ann.presence({ joined: 1 });
    bob.send({ type: "who" });
    expect(await bob.next("users")).toEqual({
      type: "users",
      users: [
        { id: "1", name: "ann" },
        { id: "2", name: "bob" },
      ],
      online: 2,
      more: false,
    });
    ann.send("after who");
    expect(await ann.next("message")).toMatchObject({ text: "after who" });
  });

  it("answers bad frames with an error and keeps the socket working", async () => {
    const room = uniqueRoom("errors");
    const ann = await Client.join(`/rooms/${room}?name=ann`);
    ann.send({ type: "dance" });
    expect(await ann.next("error")).toMatchObject({ code: "unknown_type" });
    ann.send({ type: "message", text: 42 });
    expect(await ann.next("error")).toMatchObject({ code: "bad_message" });
    ann.send("   ");
    expect(await ann.next("error")).toMatchObject({ code: "empty_message" });
    ann.send(new TextEncoder().encode("binary").buffer as ArrayBuffer);
    expect(await ann.next("error")).toMatchObject({ code: "unsupported", message: expect.stringMatching(/binary/) });
    ann.send("still here");
    expect(await ann.next("message")).toMatchObject({ text: "still here" });
  });

  it("keeps rooms apart", async () => {
    const ann = await Client.join(`/rooms/${uniqueRoom("isolated")}?name=ann`);
    const bob = await Client.join(`/rooms/${uniqueRoom("isolated")}?name=bob`);
    ann.send("only for my room");
    expect(await ann.next("message")).toMatchObject({ text: "only for my room" });
    bob.send("and mine");
    expect(await bob.next("message")).toMatchObject({ text: "and mine" });
    expect(ann.unread()).toEqual([]);
  });

  it("delivers to everyone else when sending to one socket throws", async () => {
    const room = uniqueRoom("broken-send");
    const ann = await Client.join(`/rooms/${room}?name=ann`);
    const bob = await Client.join(`/rooms/${room}?name=bob`);
    const cat = await Client.join(`/rooms/${room}?name=cat`);
    await ann.presence({ joined: 2 });
    await bob.presence({ joined: 1 });
    await runInDurableObject(env.ROOMS.getByName(room), (_, state) => {
      const bobSocket = state.getWebSockets().find((ws) => (ws.deserializeAttachment() as { name: string }).name === "bob")!;
      bobSocket.send = () => {
        throw new Error("send failed");
      };
    });
    cat.send("does it reach ann?");
    expect(await ann.next("message")).toMatchObject({ text: "does it reach ann?" });
    expect(await cat.next("message")).toMatchObject({ text: "does it reach ann?" });
  });
});

describe("text format", () => {
  it("speaks the original chat's lines", async () => {
    const room = uniqueRoom("text");
    const ann = await Client.join(`/rooms/${room}?name=ann`);
    const tex = await Client.connect(`/rooms/${room}?name=tex&format=text`);
    expect(await tex.nextText()).toBe(`Welcome to the chat room ${room}! You are tex. Online: ann, tex`);
    await ann.presence({ joined: 1 });
    const bob = await Client.join(`/rooms/${room}?name=bob`);
    expect(await tex.nextText()).toBe("bob entered the chat room.");
    ann.send("hi all");
    expect(await tex.nextText()).toBe("ann: hi all");
    tex.send("typed in a terminal");
    expect(await tex.nextText()).toBe("tex: typed in a terminal");
    expect(await ann.skipTo("message")).toMatchObject({ text: "hi all" });
    expect(await ann.skipTo("message")).toMatchObject({ user: { name: "tex" }, text: "typed in a terminal" });
    tex.send({ type: "nope" });
    expect(await tex.nextText()).toMatch(/^error: unknown frame type/);
    bob.close();
    expect(await tex.nextText()).toBe("bob left the chat room.");
  });
});

describe("leaving", () => {
  it("announces a leave and answers the close handshake with the client's code", async () => {
    const room = uniqueRoom("leave");
    const ann = await Client.join(`/rooms/${room}?name=ann`);
    const bob = await Client.join(`/rooms/${room}?name=bob`);
    await ann.presence({ joined: 1 });
    bob.close(1000, "bye");
    const closed = await bob.closed();
    expect(closed.code).toBe(1000);
    expect(await ann.next("presence")).toMatchObject({ joined: [], left: [{ user: { id: "2", name: "bob" }, reason: "closed" }], online: 1 });
    ann.send({ type: "who" });
    expect((await ann.next("users")).users).toEqual([{ id: "1", name: "ann" }]);
  });

  it("closes a socket that fails, logs why, and announces it as left with reason error", async () => {
    const room = uniqueRoom("socket-error");
    const errors = vi.spyOn(console, "error");
    const ann = await Client.join(`/rooms/${room}?name=ann`);
    const bob = await Client.join(`/rooms/${room}?name=bob`);
    await ann.presence({ joined: 1 });
    // A test cannot make the runtime's end of a socket fail, so it calls the handler the runtime would call then.
    await runInDurableObject(env.ROOMS.getByName(room), async (instance: Room, state) => {
      const socket = state.getWebSockets().find((ws) => (ws.deserializeAttachment() as Member | null)?.name === "bob");
      await instance.webSocketError(socket!, new Error("connection reset"));
    });
    expect(await ann.next("presence")).toMatchObject({ joined: [], left: [{ user: { id: "2", name: "bob" }, reason: "error" }], online: 1 });
    await bob.closed();
    expect(errors.mock.calls.map(([line]) => JSON.parse(String(line)))).toEqual([
      { event: "error", room, handler: "webSocketError", message: "Error: connection reset" },
    ]);
    errors.mockRestore();
    ann.send({ type: "who" });
    expect((await ann.next("users")).users).toEqual([{ id: "1", name: "ann" }]);
  });

  it("removes the alarm when the last person leaves", async () => {
    const room = uniqueRoom("empty");
    const stub = env.ROOMS.getByName(room);
    const ann = await Client.join(`/rooms/${room}?name=ann`);
    expect(await runInDurableObject(stub, (_, state) => state.storage.getAlarm())).not.toBeNull();
    ann.close();
    await ann.closed();
    await expect.poll(() => runInDurableObject(stub, (_, state) => state.storage.getAlarm())).toBeNull();
  });
});

describe("logs", () => {
  it("writes one JSON line per connect and close, and none per message", async () => {
    const room = uniqueRoom("logs");
    const lines = vi.spyOn(console, "log");
    const ann = await Client.join(`/rooms/${room}?name=ann`);
    for (let i = 0; i < 5; i++) ann.send(`message ${i}`);
    for (let i = 0; i < 5; i++) await ann.next("message");
    ann.close(4001, "going");
    await ann.closed();
    await expect.poll(() => lines.mock.calls.length).toBe(2);
    expect(lines.mock.calls.map(([line]) => JSON.parse(String(line)))).toEqual([
      { event: "connect", room, id: "1", format: "json", online: 1 },
      { event: "close", room, id: "1", code: 4001, reason: "closed", online: 0 },
    ]);
    lines.mockRestore();
  });

  it("catches a handler's error, logs it and answers with an error frame", async () => {
    const room = uniqueRoom("handler-error");
    const errors = vi.spyOn(console, "error");
    const ann = await Client.join(`/rooms/${room}?name=ann`);
    await runInDurableObject(env.ROOMS.getByName(room), (_, state) => {
      state.getWebSockets()[0]!.serializeAttachment = () => {
        throw new Error("attachment store failed");
      };
    });
    ann.send("this frame fails");
    expect(await ann.next("error")).toEqual({ type: "error", code: "internal", message: "the room could not handle that frame" });
    expect(JSON.parse(String(errors.mock.calls[0]?.[0]))).toEqual({
      event: "error",
      room,
      handler: "webSocketMessage",
      message: "Error: attachment store failed",
    });
    errors.mockRestore();
  });
});
