import { env, evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { MessageFrame } from "../src/protocol";
import type { Room } from "../src/room/room";
import { signToken } from "../src/auth/grant";
import { Client, uniqueRoom, caller, read } from "./support/client";
import { frozenClock, slowSignatures } from "./support/clock";
import { waitFor } from "./support/frames";
import { crowd, info, loseNextDelivery, messagesOf, parsed, range, untilMessages } from "./support/shards";

// This project runs with SHARD_SIZE=3: the room holds the first three
// sockets, shard 1 the next three, and so on.

const shardOf = (room: string, k: number) => env.SHARDS.getByName(`${room}#${k}`);

describe("a room across objects", () => {
  it("gives every socket every message exactly once, in seq order, and each sender its acks", async () => {
    const room = uniqueRoom("crowd");
    const clients = await crowd(room, 12);
    expect((await info(room)).objects).toBe(4);
    const senders = [clients[0]!, clients[4]!, clients[8]!, clients[11]!];
    for (let round = 0; round < 5; round++) {
      for (const [i, sender] of senders.entries()) sender.send({ type: "message", text: `from ${i}, round ${round}`, id: `m-${i}-${round}` });
    }
    await untilMessages(clients, 20);

    for (const client of clients) expect(messagesOf(client).map((m) => m.seq)).toEqual(range(1, 20));
    for (const [i, sender] of senders.entries()) {
      const frames = parsed(sender);
      for (let round = 0; round < 5; round++) {
        const sent = frames.findIndex((f) => f.type === "message" && f.text === `from ${i}, round ${round}`);
        const ack = frames.findIndex((f) => f.type === "ack" && f.id === `m-${i}-${round}`);
        expect(ack, `the ack of m-${i}-${round}`).toBeGreaterThan(sent);
        expect(sent).toBeGreaterThanOrEqual(0);
        expect(frames[ack]).toMatchObject({ seq: (frames[sent] as MessageFrame).seq });
      }
    }
  });

  it("delivers to a shard's sockets in each one's format", async () => {
    const room = uniqueRoom("formats");
    await crowd(room, 3);
    const tex = await Client.join(`/rooms/${room}?name=tex&format=text`);
    const jay = await Client.join(`/rooms/${room}?name=jay`);
    jay.send("hello, shard");
    expect(await jay.skipTo("message")).toMatchObject({ text: "hello, shard", user: { name: "jay" } });
    await waitFor(
      () => tex.frames.includes("jay: hello, shard"),
      () => `tex's line; it has ${tex.frames.join(" | ")}`,
    );
  });

  it("counts everyone on every object in welcomes, who, ticks and GET /api/rooms/<room>", async () => {
    const room = uniqueRoom("count");
    const clients = await crowd(room, 9);
    const last = await Client.connect(`/rooms/${room}?name=last`);
    const welcome = await last.next("welcome");
    expect(welcome.online).toBe(10);
    expect(welcome.users.map((u) => u.name)).toEqual([...range(0, 8).map((i) => `u${i}`), "last"]);

    clients[7]!.send({ type: "who" });
    const users = await clients[7]!.skipTo("users");
    expect(users.online).toBe(10);
    expect(users.users).toHaveLength(10);

    const api = await info(room);
    expect(api).toMatchObject({ online: 10, objects: 4 });
    expect(api.users.map((u) => u.id)).toEqual(range(1, 10).map(String));

    // A shard ticks its own sockets, with the whole room's count.
    await waitFor(
      () => parsed(clients[4]!).some((f) => f.type === "presence" && f.online === 10),
      () => "the last join to reach shard 1",
    );
    expect(await runDurableObjectAlarm(shardOf(room, 1))).toBe(true);
    expect(await clients[4]!.skipTo("tick")).toMatchObject({ online: 10 });
  });

  it("carries edits and deletes to every object once each, in the room's order, and fills one a shard lost from history", async () => {
    const room = uniqueRoom("changes");
    const clients = await crowd(room, 5);
    const [ann] = clients;
    ann!.send("frist");
    await untilMessages(clients, 1);
    const lost = loseNextDelivery(room, "edit");
    ann!.send({ type: "edit", seq: 1, text: "first" });
    ann!.send("second");
    ann!.send({ type: "delete", seq: 3 });
    const sequence = (client: Client) => parsed(client).filter((f) => f.type === "message" || f.type === "edit" || f.type === "delete");
    await waitFor(
      () => clients.every((c) => sequence(c).length >= 4),
      () => `4 entries at every client; they have ${clients.map((c) => sequence(c).length).join(", ")}`,
    );
    expect(lost()).toBe(true);
    for (const client of clients) {
      expect(sequence(client)).toMatchObject([
        { type: "message", seq: 1, text: "frist" },
        { type: "edit", seq: 1, change: 2, text: "first" },
        { type: "message", seq: 3, text: "second" },
        { type: "delete", seq: 3, change: 4 },
      ]);
    }
  });

  it("carries reactions and replies from and to every object once each, in the room's order, and fills a reaction a shard lost from history", async () => {
    const room = uniqueRoom("reactions");
    const clients = await crowd(room, 5);
    const [ann, , , , eve] = clients;
    ann!.send("vote");
    await untilMessages(clients, 1);
    const lost = loseNextDelivery(room, "reactions");
    ann!.send({ type: "react", seq: 1, emoji: "👍", id: "r1" });
    await ann!.skipTo("ack");
    // Eve is on shard 1: her frames reach the room through it.
    eve!.send({ type: "react", seq: 1, emoji: "👎", id: "r2" });
    eve!.send({ type: "message", text: "me too", replyTo: 1, id: "m2" });
    const sequence = (client: Client) => parsed(client).filter((f) => f.type === "message" || f.type === "reactions");
    await waitFor(
      () => clients.every((c) => sequence(c).some((f) => f.type === "message" && f.seq === 4)),
      () => `the reply at every client; they have ${clients.map((c) => JSON.stringify(sequence(c).map((f) => f.type))).join(", ")}`,
    );
    expect(lost()).toBe(true);
    const summary = [
      { emoji: "👍", count: 1, users: ["1"] },
      { emoji: "👎", count: 1, users: ["5"] },
    ];
    const reply = { type: "message", seq: 4, text: "me too", replyTo: { seq: 1, text: "vote" } };
    for (const client of clients) {
      expect(sequence(client)).toMatchObject([{ seq: 1 }, { type: "reactions", change: 2 }, { type: "reactions", change: 3, reactions: summary }, reply]);
    }
    eve!.send({ type: "thread", seq: 1, id: "t1" });
    expect((await eve!.skipTo("thread")).messages.map((m) => m.seq)).toEqual([4]);
  });

  it("resumes with since through a shard, with nothing missed and nothing twice", async () => {
    const room = uniqueRoom("resume");
    const [ann] = await crowd(room, 3);
    let dan = await Client.join(`/rooms/${room}?name=dan&client=dan`);
    for (let i = 1; i <= 3; i++) ann!.send(`before ${i}`);
    await untilMessages([dan], 3);
    dan.close();
    await dan.closed();
    for (let i = 4; i <= 6; i++) ann!.send(`while away ${i}`);
    await untilMessages([ann!], 6);

    dan = await Client.connect(`/rooms/${room}?name=dan&client=dan&since=3`);
    await dan.next("welcome");
    expect((await dan.next("history")).messages.map((m) => m.seq)).toEqual([4, 5, 6]);
    ann!.send("after");
    expect(await dan.skipTo("message")).toMatchObject({ seq: 7, text: "after" });
    expect((await info(room)).objects).toBe(2);
  });

  it("announces a leave and a timeout on a shard once, and forgets an emptied shard", async () => {
    const room = uniqueRoom("leave");
    const [ann] = await crowd(room, 3);
    const [sam, sid] = await crowd(room, 2, "s");
    await ann!.presence({ joined: 2 });
    await sam!.presence({ joined: 1 });

    sam!.close();
    await sam!.closed();
    expect(await ann!.presence({ left: 1 })).toMatchObject({ left: [{ user: { name: "s0" }, reason: "closed" }], online: 4 });
    expect(await sid!.presence({ left: 1 })).toMatchObject({ left: [{ user: { name: "s0" }, reason: "closed" }], online: 4 });

    // sid never sent a frame: a minute later the shard's sweep closes it.
    const clock = frozenClock();
    clock.advance(61_000);
    expect(await runDurableObjectAlarm(shardOf(room, 1))).toBe(true);
    expect((await sid!.closed()).code).toBe(4000);
    expect(await ann!.presence({ left: 1 })).toMatchObject({ left: [{ user: { name: "s1" }, reason: "timeout" }], online: 3 });

    // Once: the next frame after the leave is the next message.
    ann!.send("anyone left?");
    expect(await ann!.next("message")).toMatchObject({ text: "anyone left?" });
    expect(await info(room)).toMatchObject({ online: 3, objects: 1 });
    expect(await runInDurableObject(shardOf(room, 1), (_, state) => state.storage.getAlarm())).toBeNull();
  });

  it("catches a shard up from history after the room lost its memory in the middle of a stream", async () => {
    const room = uniqueRoom("room-evicted");
    const clients = await crowd(room, 7);
    const [ann] = clients;
    for (let i = 1; i <= 5; i++) ann!.send(`one ${i}`);
    await evictDurableObject(env.ROOMS.getByName(room), { webSockets: "hibernate" });
    for (let i = 1; i <= 5; i++) clients[5]!.send(`two ${i}`);
    await evictDurableObject(shardOf(room, 1), { webSockets: "hibernate" });
    for (let i = 1; i <= 5; i++) clients[6]!.send(`three ${i}`);
    await untilMessages(clients, 15);
    for (const client of clients) expect(messagesOf(client).map((m) => m.seq)).toEqual(range(1, 15));
  });

  it("remembers across hibernation what it delivered, so a repeated delivery repeats nothing", async () => {
    const room = uniqueRoom("remembers");
    const [ann, , , dan] = await crowd(room, 4);
    for (let i = 1; i <= 3; i++) ann!.send(`before ${i}`);
    await untilMessages([dan!], 3);
    await evictDurableObject(shardOf(room, 1), { webSockets: "hibernate" });

    const { messages } = await runInDurableObject(env.ROOMS.getByName(room), (instance: Room) => read(instance.messages(0, 10, caller())));
    await shardOf(room, 1).deliver({ instance: "a-room-that-retries", fill: { messages, through: 3 }, items: [], online: 4 });
    ann!.send("after");
    await untilMessages([dan!], 4);
    expect(messagesOf(dan!).map((m) => m.seq)).toEqual([1, 2, 3, 4]);
  });

  it("fills a gap from history when a call to a shard lost a message", async () => {
    const room = uniqueRoom("gap");
    const clients = await crowd(room, 5);
    const [ann] = clients;
    ann!.send("first");
    await untilMessages(clients, 1);
    loseNextDelivery(room, "message");
    ann!.send("second");
    await untilMessages(clients.slice(0, 3), 2);
    ann!.send("third");
    await untilMessages(clients, 3);
    for (const client of clients) expect(messagesOf(client).map((m) => m.seq)).toEqual([1, 2, 3]);
  });

  it("loses and repeats nothing when the room is reset with its sockets while a shard's keep talking", async () => {
    const room = uniqueRoom("room-reset");
    const clients = await crowd(room, 6, "u", "&client=c");
    const [sid, sue, sal] = clients.slice(3);
    for (let i = 1; i <= 3; i++) sid!.send(`before ${i}`);
    await untilMessages(clients, 3);
    await evictDurableObject(env.ROOMS.getByName(room), { webSockets: "close" });
    for (const client of clients.slice(0, 3)) expect((await client.closed()).code).toBe(1006);

    for (let i = 4; i <= 6; i++) sid!.send(`during ${i}`);
    await untilMessages([sid!, sue!, sal!], 6);
    const back = [];
    for (let i = 0; i < 3; i++) back.push(await Client.connect(`/rooms/${room}?name=u${i}&client=c${i}&since=3`));
    for (const client of back) {
      await client.next("welcome");
      expect((await client.next("history")).messages.map((m) => m.seq)).toEqual([4, 5, 6]);
    }
    sal!.send("after 7");
    for (const client of back) expect(await client.skipTo("message")).toMatchObject({ seq: 7 });
    await untilMessages([sid!, sue!, sal!], 7);
    for (const client of [sid!, sue!, sal!]) expect(messagesOf(client).map((m) => m.seq)).toEqual(range(1, 7));
  });

  it("loses and repeats nothing when a shard is reset with its sockets: the room notices, and they resume", async () => {
    const room = uniqueRoom("shard-reset");
    const clients = await crowd(room, 6, "u", "&client=c");
    const [ann] = clients;
    for (let i = 1; i <= 3; i++) ann!.send(`before ${i}`);
    await untilMessages(clients, 3);
    await evictDurableObject(shardOf(room, 1), { webSockets: "close" });
    for (const client of clients.slice(3)) expect((await client.closed()).code).toBe(1006);
    for (let i = 4; i <= 6; i++) ann!.send(`during ${i}`);
    await untilMessages([ann!], 6);

    // The shard's next answer says it holds nobody, and the room's census finds them gone.
    await waitFor(
      () =>
        parsed(ann!)
          .filter((f) => f.type === "presence")
          .flatMap((f) => f.left).length === 3,
      () => "the three leaves",
    );
    expect(await info(room)).toMatchObject({ online: 3, objects: 1 });

    const back = [];
    for (let i = 3; i < 6; i++) back.push(await Client.connect(`/rooms/${room}?name=u${i}&client=c${i}&since=3`));
    ann!.send("after 7");
    for (const [i, client] of back.entries()) {
      expect(await client.next("welcome")).toMatchObject({ online: 4 + i });
      expect((await client.next("history")).messages.map((m) => m.seq)).toEqual([4, 5, 6]);
      expect(await client.skipTo("message")).toMatchObject({ seq: 7 });
    }
  });
});

describe("the room's size", () => {
  it("counts every object against MAX_CONNECTIONS_PER_ROOM (40 here): the 41st is refused with 503 room_full", async () => {
    const room = uniqueRoom("full");
    await crowd(room, 40);
    expect(await info(room)).toMatchObject({ online: 40, objects: 14 });
    const response = await exports.default.fetch(`http://chat.test/rooms/${room}`, { headers: { Upgrade: "websocket", "CF-Connecting-IP": "198.51.100.7" } });
    expect(response.status).toBe(503);
    expect(await response.json()).toMatchObject({ code: "room_full" });
  });
});

describe("limits and bad input on a shard", () => {
  it("answer a shard's socket as the room answers its own", async () => {
    const room = uniqueRoom("bad-input");
    await crowd(room, 3);
    const sam = await Client.join(`/rooms/${room}?name=sam`);
    sam.send(new ArrayBuffer(8));
    expect(await sam.skipTo("error")).toMatchObject({ code: "unsupported" });
    sam.send("x".repeat(20_000));
    expect(await sam.skipTo("error")).toMatchObject({ code: "too_large" });
    sam.send('{"type":"nope"}');
    expect(await sam.skipTo("error")).toMatchObject({ code: "unknown_type" });

    frozenClock();
    for (let i = 0; i < 100; i++) sam.send({ type: "who" });
    expect(await sam.skipTo("error")).toMatchObject({ code: "rate_limited" });
    expect((await sam.closed()).code).toBe(1008);
  });

  it("share one frame budget among an address's sockets on different objects", async () => {
    const room = uniqueRoom("address-share");
    await crowd(room, 3);
    const address = "203.0.113.9";
    const same: Client[] = [];
    for (let i = 0; i < 4; i++) same.push(await Client.join(`/rooms/${room}?name=x${i}`, address));
    expect((await info(room)).objects).toBe(3);

    // 3 × 20 frames per 10 s for the address, 20 for each socket; the clock stands still.
    frozenClock();
    for (const client of same) for (let i = 0; i < 15; i++) client.send({ type: "who" });
    for (const client of same) {
      await waitFor(
        () => parsed(client).filter((f) => f.type === "users").length === 15,
        () => `15 answers; ${client.unread().length} unread`,
      );
    }
    same[3]!.send({ type: "who" });
    expect(await same[3]!.skipTo("error")).toMatchObject({ code: "rate_limited" });
  });

  it("share one reactions budget among an address's sockets on different objects, beside each socket's own", async () => {
    const room = uniqueRoom("address-reactions");
    const [ann] = await crowd(room, 3);
    ann!.send("react to this");
    await ann!.skipTo("message");
    const address = "203.0.113.10";
    const same: Client[] = [];
    for (let i = 0; i < 4; i++) same.push(await Client.join(`/rooms/${room}?name=y${i}`, address));

    // 3 × 20 reactions per 10 s for the address, 20 for each socket; the clock stands still.
    frozenClock();
    for (const [k, client] of same.slice(0, 3).entries()) {
      for (let i = 0; i < 20; i++) client.send({ type: i % 2 === 0 ? "react" : "unreact", seq: 1, emoji: "👍", id: `r${k}-${i}` });
    }
    for (const [k, client] of same.slice(0, 3).entries()) {
      await waitFor(
        () => parsed(client).filter((f) => f.type === "ack" && f.id.startsWith(`r${k}-`)).length === 20,
        () => `20 acks of reactions; ${client.unread().length} unread`,
      );
    }
    same[3]!.send({ type: "react", seq: 1, emoji: "👍", id: "over" });
    // Refused unread, so without its id.
    expect(await same[3]!.skipTo("error")).toMatchObject({ code: "rate_limited", message: "too many reactions; slow down" });
    same[3]!.send("a message still goes");
    expect(await same[3]!.skipTo("message")).toMatchObject({ text: "a message still goes" });
  });
});

describe("moderation and tokens on a shard", () => {
  it("closes a shard's socket that a moderator kicked, or whose token expired, and announces each once", async () => {
    const room = uniqueRoom("shard-moderation");
    const exp = Math.floor(Date.now() / 1000) + 120;
    const mod = await Client.join(`/rooms/${room}?token=${await signToken("shards-test-secret", { room, name: "mod", role: "moderator", exp: exp + 3600 })}`);
    await crowd(room, 2);
    const [sam, tia] = await crowd(room, 2, "s");
    const tok = await Client.join(`/rooms/${room}?token=${await signToken("shards-test-secret", { room, name: "tok", exp })}`);
    expect((await info(room)).objects).toBe(2);

    // The room's own crowd, silent all along, is swept by the alarm below; only these two matter here.
    const left = () =>
      parsed(tia!)
        .filter((f) => f.type === "presence")
        .flatMap((f) => f.left)
        .filter((l) => l.user.name === "s0" || l.user.name === "tok");
    mod.send({ type: "kick", user: "4" });
    expect(await mod.skipTo("moderated")).toMatchObject({ user: { name: "s0" } });
    expect((await sam!.closed()).code).toBe(4001);
    // Heard before tia's own `who` below, whose answer would otherwise tell her instead.
    await waitFor(
      () => left().length === 1,
      () => `s0's leave at tia; she has ${JSON.stringify(left())}`,
    );
    const clock = frozenClock();
    clock.advance(151_000); // past tok's exp and the 30-s clock skew allowed
    for (const client of [mod, tia!]) {
      client.send({ type: "who" });
      await client.skipTo("users");
    }
    expect(await runDurableObjectAlarm(env.ROOMS.getByName(room))).toBe(true);
    expect((await tok.closed()).code).toBe(4002);
    await waitFor(
      () => left().length >= 2,
      () => `two leaves at tia; she has ${JSON.stringify(left())}`,
    );
    expect(left().map((l) => [l.user.name, l.reason])).toEqual([
      ["s0", "kicked"],
      ["tok", "expired"],
    ]);
  });
});

describe("answers on a shard", () => {
  it("carry a search's results, or its refusal, to the shard's socket that asked, in its format", async () => {
    const room = uniqueRoom("search");
    const [ann] = await crowd(room, 3);
    ann!.send({ type: "message", text: "where is the kettle", id: "m1" });
    await ann!.skipTo("ack");
    const sam = await Client.join(`/rooms/${room}?name=sam`);
    const tex = await Client.join(`/rooms/${room}?name=tex&format=text`);
    expect((await info(room)).objects).toBe(2);

    sam.send({ type: "search", q: "kettle", id: "s1" });
    expect(await sam.skipTo("search")).toEqual({
      type: "search",
      id: "s1",
      q: "kettle",
      results: [{ seq: 1, user: { id: "1", name: "u0" }, text: "where is the kettle", at: expect.any(Number), snippet: "where is the [kettle]" }],
      more: false,
    });
    sam.send({ type: "search", q: "AND", id: "s2" });
    expect(await sam.skipTo("error")).toMatchObject({ id: "s2", code: "bad_query" });
    tex.send({ type: "search", q: "kettle" });
    await waitFor(
      () => tex.frames.includes('Found for "kettle":\n  #1 u0: where is the [kettle]'),
      () => `tex's results; tex has ${tex.frames.join(" | ")}`,
    );
  });

  it("keep the order of the frames they answer while a token check is slow, and hold up no one else on the shard", async () => {
    const room = uniqueRoom("shard-renewal");
    const secret = "shards-test-secret"; // as set for this project in vitest.config.ts
    const exp = Math.floor(Date.now() / 1000) + 3600;
    await crowd(room, 3);
    const ann = await Client.join(`/rooms/${room}?token=${await signToken(secret, { room, name: "ann", sub: "ann-1", exp })}`);
    const sam = await Client.join(`/rooms/${room}?name=sam`);
    expect((await info(room)).objects).toBe(2);

    const signatures = slowSignatures();
    ann.send({ type: "token", token: await signToken(secret, { room, name: "ann", sub: "ann-1", exp: exp + 3600 }), id: "renew" });
    ann.send({ type: "message", text: "after the renewal", id: "m" });
    await waitFor(
      () => signatures.waiting() === 1,
      () => "the renewal's signature check",
    );
    sam.send({ type: "message", text: "meanwhile", id: "s" });
    expect(await sam.skipTo("ack")).toMatchObject({ id: "s" });

    signatures.release();
    expect(await ann.skipTo("renewed")).toMatchObject({ id: "renew", exp: exp + 3600 });
    expect(await ann.skipTo("ack")).toMatchObject({ id: "m" });
  });

  it("end a close the room decides with a closing frame, as the room's own sockets get", async () => {
    const room = uniqueRoom("shard-closing");
    const secret = "shards-test-secret"; // as set for this project in vitest.config.ts
    const exp = Math.floor(Date.now() / 1000) + 3600;
    const mod = await Client.join(`/rooms/${room}?token=${await signToken(secret, { room, name: "mod", role: "moderator", exp })}`);
    await crowd(room, 2);
    const sam = await Client.join(`/rooms/${room}?name=sam`);
    expect((await info(room)).objects).toBe(2);
    mod.send({ type: "kick", user: "4" });
    expect(await sam.skipTo("closing")).toEqual({ type: "closing", code: 4001, reason: "kicked", message: "a moderator removed you from the room" });
    expect((await sam.closed()).code).toBe(4001);
  });
});

describe("typing across objects", () => {
  it("reaches every object's sockets, in each one's format, from the room's sockets and from a shard's", async () => {
    const room = uniqueRoom("shard-typing");
    const [u0] = await crowd(room, 3);
    const sam = await Client.join(`/rooms/${room}?name=sam`);
    const tex = await Client.join(`/rooms/${room}?name=tex&format=text`);
    await Client.join(`/rooms/${room}?name=dan`);
    const jay = await Client.join(`/rooms/${room}?name=jay`);
    expect((await info(room)).objects).toBe(3);
    const zero = { id: "1", name: "u0" };
    const samUser = { id: "4", name: "sam" };

    u0!.send({ type: "typing" });
    for (const client of [u0!, sam, jay]) expect(await client.skipTo("typing")).toEqual({ type: "typing", users: [zero], count: 1, started: [zero] });
    sam.send({ type: "typing" });
    for (const client of [u0!, sam, jay]) {
      expect(await client.skipTo("typing")).toEqual({ type: "typing", users: [zero, samUser], count: 2, started: [samUser] });
    }
    sam.send("done typing");
    for (const client of [u0!, jay]) {
      expect(await client.skipTo("message")).toMatchObject({ text: "done typing" });
      expect(await client.skipTo("typing")).toEqual({ type: "typing", users: [zero], count: 1, started: [] });
    }
    await waitFor(
      () => tex.frames.join("\n").includes("u0 is typing…\nsam is typing…\nsam: done typing"),
      () => `tex's lines; it has ${tex.frames.join(" | ")}`,
    );
  });

  it("takes a shard's socket's typing from its own lane, past its spent frames, and refuses a frame smuggled on it", async () => {
    const room = uniqueRoom("shard-lanes");
    const [u0] = await crowd(room, 3);
    const sam = await Client.join(`/rooms/${room}?name=sam`);
    expect((await info(room)).objects).toBe(2);

    frozenClock();
    sam.send('{"type":"typing","type":"message","text":"on typing\'s budget"}');
    expect(await sam.skipTo("error")).toMatchObject({ code: "bad_message" });
    for (let i = 0; i < 20; i++) sam.send({ type: "who" });
    sam.send({ type: "who" });
    expect(await sam.skipTo("error")).toMatchObject({ code: "rate_limited", message: "too many frames; slow down" });
    sam.send({ type: "typing" });
    expect(await u0!.skipTo("typing")).toMatchObject({ users: [{ id: "4", name: "sam" }] });
    for (let i = 0; i < 9; i++) sam.send({ type: "typing" });
    expect(await sam.skipTo("error")).toMatchObject({ code: "rate_limited", message: "too many typing frames; slow down" });
    expect(messagesOf(u0!)).toEqual([]);
  });
});

describe("read positions across objects", () => {
  /** Waits until the room has handled everything `client` sent before, and sent it what that caused: its answer to a `who` comes after. */
  let asked = 0;
  async function handled(client: Client): Promise<void> {
    const id = `handled-${++asked}`;
    client.send({ type: "who", id });
    await waitFor(
      () => parsed(client).some((f) => f.type === "users" && f.id === id),
      () => `the answer to who ${id}`,
    );
  }
  const readsOf = (client: Client) => parsed(client).filter((f) => f.type === "read");

  it("reach the account's sockets on every object, from the room's and from a shard's, and newcomers' welcomes and receipts there", async () => {
    const room = uniqueRoom("shard-reads");
    const annHere = await Client.join(`/rooms/${room}?name=ann&client=ann-1`);
    const [talker] = await crowd(room, 2);
    const annThere = await Client.join(`/rooms/${room}?name=ann&client=ann-1`);
    const bob = await Client.join(`/rooms/${room}?name=bob&client=bob-1`);
    const pat = await Client.join(`/rooms/${room}?name=pat`);
    const bobTab = await Client.join(`/rooms/${room}?name=bob&client=bob-1`);
    expect((await info(room)).objects).toBe(3);
    for (let i = 0; i < 3; i++) talker!.send(`message ${i}`);
    await untilMessages([annHere, annThere, bob, bobTab], 3);

    annThere.send({ type: "read", seq: 2 });
    await handled(annThere);
    await handled(annHere);
    expect(readsOf(annHere), "on the room, from shard 1").toEqual([{ type: "read", seq: 2 }]);
    annHere.send({ type: "read", seq: 3 });
    await handled(annHere);
    await handled(annThere);
    expect(readsOf(annThere), "on shard 1, from the room").toEqual([{ type: "read", seq: 3 }]);
    bob.send({ type: "read", seq: 3 });
    await handled(bob);
    await handled(bobTab);
    expect(readsOf(bobTab), "on shard 2, from shard 1").toEqual([{ type: "read", seq: 3 }]);
    for (const client of [annHere, annThere, bob, pat]) await handled(client);
    expect(readsOf(annHere)).toHaveLength(1);
    expect(readsOf(annThere)).toHaveLength(1);
    expect([...readsOf(bob), ...readsOf(pat)], "to the reader and to others").toEqual([]);

    // Everyone in this small room hears of them, wherever their socket is.
    const ann = { name: "ann" };
    const bobs = { name: "bob" };
    const heard = (client: Client) => new Map(parsed(client).flatMap((f) => (f.type === "receipts" ? f.receipts.map((r) => [r.user.id, r.seq] as const) : [])));
    const all = new Map([
      ["1", 3],
      ["4", 3],
      ["5", 3],
      ["7", 3],
    ]);
    await waitFor(
      () => [pat, bobTab].every((client) => heard(client).size === 4 && [...heard(client)].every(([id, seq]) => all.get(id) === seq)),
      () => `receipts on shards 1 and 2; pat heard ${JSON.stringify([...heard(pat)])}, bob's tab ${JSON.stringify([...heard(bobTab)])}`,
    );

    const annLater = await Client.connect(`/rooms/${room}?name=ann&client=ann-1`);
    expect((await annLater.next("welcome")).read, "a welcome on shard 2").toBe(3);
    await annLater.next("history");
    const current = await annLater.next("receipts");
    expect(current.receipts.map((r) => ({ id: r.user.id, seq: r.seq }))).toEqual(["1", "4", "5", "7", "8"].map((id) => ({ id, seq: 3 })));
    expect(current.receipts.map((r) => r.user)).toMatchObject([ann, ann, bobs, bobs, ann]);
  });
});
