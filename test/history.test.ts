import { exports } from "cloudflare:workers";
import { env, evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { History } from "../src/room/history";
import { RoomStore } from "../src/room/store";
import type { MessageFrame } from "../src/protocol";
import type { Room } from "../src/room/room";
import { Client, uniqueRoom, caller, read } from "./support/client";
import { fastClock } from "./support/clock";

const stubOf = (room: string) => env.ROOMS.getByName(room);

/**
 * Posts `count` messages straight through the room's RPC method, as the HTTP
 * API does, each from its own address so that the rate limit stays out of it.
 */
async function seed(room: string, count: number, from = "bot"): Promise<void> {
  await runInDurableObject(stubOf(room), async (instance: Room) => {
    for (let i = 1; i <= count; i++) await instance.post({ name: from, text: `${from} ${i}`, address: `seed-${i}`, client: null, identity: null });
  });
}

/**
 * Fills messages 1 to `last` straight into storage, as an older version
 * or a lowered HISTORY_LIMIT leaves them, and sets the alarm; the room
 * reads them when it wakes from the eviction that follows.
 */
async function backlog(room: string, last: number): Promise<void> {
  await runInDurableObject(stubOf(room), (_, state) => {
    state.storage.sql.exec(
      `WITH RECURSIVE n(seq) AS (SELECT 1 UNION ALL SELECT seq + 1 FROM n WHERE seq < ?)
       INSERT OR REPLACE INTO messages (seq, user_id, user_name, text, at, sender) SELECT seq, 'http', 'bot', 'old ' || seq, 0, 'post:' FROM n`,
      last,
    );
    return state.storage.setAlarm(Date.now());
  });
  await evictDurableObject(stubOf(room), { webSockets: "hibernate" });
}

const alarmOf = (room: string) => runInDurableObject(stubOf(room), (_, state) => state.storage.getAlarm());
const seqs = (messages: MessageFrame[]) => messages.map((m) => m.seq);
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe("sequence numbers", () => {
  it("are 1, 2, 3, … in one order for everyone, however senders interleave", async () => {
    fastClock();
    const room = uniqueRoom("seq");
    const clients = [await Client.join(`/rooms/${room}?name=a`), await Client.join(`/rooms/${room}?name=b`), await Client.join(`/rooms/${room}?name=c`)];
    for (const [i, client] of clients.entries()) await client.presence({ joined: clients.length - 1 - i });

    for (let round = 0; round < 30; round++) for (const [i, client] of clients.entries()) client.send(`${"abc"[i]}${round}`);

    const logs: MessageFrame[][] = [];
    for (const client of clients) {
      const log: MessageFrame[] = [];
      for (let k = 0; k < 90; k++) log.push(await client.next("message"));
      logs.push(log);
    }
    expect(seqs(logs[0]!)).toEqual(range(1, 90));
    expect(logs[1]).toEqual(logs[0]);
    expect(logs[2]).toEqual(logs[0]);
    for (const name of ["a", "b", "c"]) {
      const own = logs[0]!.filter((m) => m.user.name === name).map((m) => m.text);
      expect(own).toEqual(range(0, 29).map((r) => `${name}${r}`));
    }
  });
});

describe("order on the wire", () => {
  it("holds while a message waits for its commit: a later frame does not overtake it", async () => {
    const room = uniqueRoom("overtake");
    const bob = await Client.join(`/rooms/${room}?name=bob`);
    await runInDurableObject(stubOf(room), async (instance: Room, state) => {
      const [socket] = state.getWebSockets();
      const posted = instance.post({ name: "carl", text: "hello", address: "carl", client: null, identity: null });
      await instance.webSocketMessage(socket!, JSON.stringify({ type: "who" }));
      await posted;
    });
    expect(await bob.next("message")).toMatchObject({ seq: 1, text: "hello" });
    expect(await bob.next("users")).toMatchObject({ online: 1 });
  });

  it("holds for answers too: a later frame's refusal never overtakes the ack of a message still waiting for its commit", async () => {
    // Clients match answers to what they sent by order; an overtaking refusal once
    // made the web page mark the wrong message refused and leave another pending for good.
    const room = uniqueRoom("ack-order");
    const ann = await Client.join(`/rooms/${room}?name=ann`);
    await runInDurableObject(stubOf(room), async (instance: Room, state) => {
      const [socket] = state.getWebSockets();
      const stored = instance.webSocketMessage(socket!, JSON.stringify({ type: "message", text: "first", id: "m-1" }));
      await instance.webSocketMessage(socket!, new ArrayBuffer(1));
      await stored;
    });
    expect(await ann.next("message")).toMatchObject({ seq: 1, text: "first" });
    expect(await ann.next("ack")).toEqual({ type: "ack", id: "m-1", seq: 1 });
    expect(await ann.next("error")).toMatchObject({ code: "unsupported" });
  });
});

describe("history on join", () => {
  it("is empty in a new room, and the welcome says lastSeq 0", async () => {
    const ann = await Client.connect(`/rooms/${uniqueRoom("fresh")}?name=ann`);
    expect(await ann.next("welcome")).toMatchObject({ lastSeq: 0 });
    expect(await ann.next("history")).toEqual({
      type: "history",
      messages: [],
      changes: [],
      oldestSeq: 0,
      lastSeq: 0,
      gap: false,
      reset: false,
      more: false,
      epoch: expect.stringMatching(/^[0-9a-f]{16}$/),
    });
  });

  it("carries the latest 50 messages, oldest first, right after the welcome", async () => {
    const room = uniqueRoom("recent");
    await seed(room, 60);
    const ann = await Client.connect(`/rooms/${room}?name=ann`);
    expect(await ann.next("welcome")).toMatchObject({ lastSeq: 60 });
    const history = await ann.next("history");
    expect(seqs(history.messages)).toEqual(range(11, 60));
    expect(history).toMatchObject({ oldestSeq: 1, lastSeq: 60, gap: false, reset: false });
    expect(history.messages[0]).toEqual({ type: "message", seq: 11, user: { id: "http", name: "bot" }, text: "bot 11", at: expect.any(Number) });
  });

  it("is replayed as lines in text format", async () => {
    const room = uniqueRoom("text-history");
    await seed(room, 3);
    const tex = await Client.connect(`/rooms/${room}?name=tex&format=text`);
    await tex.nextText();
    expect(await tex.nextText()).toBe("bot: bot 1\nbot: bot 2\nbot: bot 3");
  });
});

describe("trimming", () => {
  it("deletes at most one batch per call, oldest first", async () => {
    await runInDurableObject(stubOf(uniqueRoom("trim-unit")), (_, state) => {
      const history = new History(state.storage, new RoomStore(state.storage.sql, [History.SCHEMA]));
      // A limit far above 30, so that only trim() below deletes anything.
      for (let i = 1; i <= 30; i++) history.append({ user: { id: "1", name: "a" }, text: `m${i}`, at: i, sender: "#1" }, 1000);
      history.trim(10, 8);
      expect([history.oldestSeq, history.size]).toEqual([9, 22]);
      history.trim(10, 8);
      history.trim(10, 8);
      expect([history.oldestSeq, history.size]).toEqual([21, 10]);
      history.trim(10, 8);
      expect([history.oldestSeq, history.lastSeq]).toEqual([21, 30]);
      expect(seqs(history.latest(100))).toEqual(range(21, 30));
      // The sequence carries on from the newest message, not from the count.
      expect(history.append({ user: { id: "1", name: "a" }, text: "next", at: 31, sender: "#1" }, 1000).seq).toBe(31);
    });
  });

  it("happens on every insert, so history never outgrows HISTORY_LIMIT, with no alarm for it", async () => {
    const room = uniqueRoom("trim-insert");
    await seed(room, 1005);
    expect(await runInDurableObject(stubOf(room), (instance: Room) => read(instance.messages(null, 1, caller())))).toMatchObject({
      oldestSeq: 6,
      lastSeq: 1005,
    });
    expect(await runInDurableObject(stubOf(room), (_, state) => state.storage.sql.exec("SELECT COUNT(*) AS n FROM messages").one().n)).toBe(1000);
    expect(await alarmOf(room)).toBeNull();
  });

  it("runs in the alarm, in batches, for a backlog such as a lowered HISTORY_LIMIT leaves, even in a room nobody is connected to", async () => {
    const room = uniqueRoom("trim");
    await seed(room, 1);
    await backlog(room, 2500);
    const bounds = () => runInDurableObject(stubOf(room), (instance: Room) => read(instance.messages(null, 1, caller())));

    expect(await runDurableObjectAlarm(stubOf(room))).toBe(true);
    expect(await bounds()).toMatchObject({ oldestSeq: 1001, lastSeq: 2500 });
    expect(await alarmOf(room)).not.toBeNull();
    await runDurableObjectAlarm(stubOf(room));
    expect(await bounds()).toMatchObject({ oldestSeq: 1501, lastSeq: 2500 });
    // Nothing left to trim and nobody connected: no alarm at all.
    expect(await alarmOf(room)).toBeNull();
  });

  it("while connected rides along with the tick, which keeps its period", async () => {
    const room = uniqueRoom("trim-tick");
    const ann = await Client.join(`/rooms/${room}?name=ann`);
    await backlog(room, 2500);
    const before = Date.now();
    await runDurableObjectAlarm(stubOf(room));
    expect(await ann.next("tick")).toMatchObject({ online: 1 });
    // 1,500 rows are left over the limit, but the next run is a tick period away, not sooner.
    expect(await runInDurableObject(stubOf(room), (instance: Room) => read(instance.messages(null, 1, caller())))).toMatchObject({ oldestSeq: 1001 });
    expect(await alarmOf(room)).toBeGreaterThanOrEqual(before + 30_000);
  });
});

describe("resume with since", () => {
  it("replays exactly what was missed across hibernation, then goes on live", async () => {
    const room = uniqueRoom("resume-hibernate");
    const ann = await Client.join(`/rooms/${room}?name=ann`);
    const bob = await Client.join(`/rooms/${room}?name=bob`);
    await ann.presence({ joined: 1 });
    bob.send("before");
    const seen = (await ann.next("message")).seq;
    ann.close();
    await ann.closed();

    for (let i = 0; i < 5; i++) bob.send(`missed ${i}`);
    await evictDurableObject(stubOf(room), { webSockets: "hibernate" });
    for (let i = 5; i < 8; i++) bob.send(`missed ${i}`);
    for (let i = 0; i < 8; i++) await bob.skipTo("message");

    const back = await Client.connect(`/rooms/${room}?name=ann&since=${seen}`);
    expect(await back.next("welcome")).toMatchObject({ lastSeq: seen + 8 });
    const history = await back.next("history");
    expect(history.messages.map((m) => m.text)).toEqual(range(0, 7).map((i) => `missed ${i}`));
    expect(seqs(history.messages)).toEqual(range(seen + 1, seen + 8));
    expect(history).toMatchObject({ gap: false, reset: false });
    bob.send("live again");
    expect(await back.next("message")).toMatchObject({ seq: seen + 9, text: "live again" });
  });

  it("replays exactly what was missed after a reset that closed every socket", async () => {
    const room = uniqueRoom("resume-reset");
    const ann = await Client.join(`/rooms/${room}?name=ann`);
    ann.send("one");
    const seen = (await ann.next("message")).seq;

    await evictDurableObject(stubOf(room), { webSockets: "close" });
    expect((await ann.closed()).code).toBe(1006);

    for (const text of ["two", "three"]) {
      const response = await exports.default.fetch(`http://chat.test/api/rooms/${room}/messages`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ name: "bot", text }),
      });
      expect(response.status).toBe(201);
    }

    const back = await Client.connect(`/rooms/${room}?name=ann&since=${seen}`);
    await back.next("welcome");
    const history = await back.next("history");
    expect(history.messages.map((m) => [m.seq, m.text])).toEqual([
      [seen + 1, "two"],
      [seen + 2, "three"],
    ]);
    back.send("four");
    expect(await back.next("message")).toMatchObject({ seq: seen + 3, text: "four" });
    expect(back.unread()).toEqual([]);
  });

  it("leaves no gap and no duplicate at the seam while messages keep arriving", async () => {
    fastClock();
    const room = uniqueRoom("seam");
    const bob = await Client.join(`/rooms/${room}?name=bob`);
    bob.send("first");
    await bob.next("message");

    // Bob keeps talking while Ann connects; every message lands either in her
    // history or live after it, never both and never neither.
    for (let i = 0; i < 40; i++) bob.send(`during ${i}`);
    const ann = await Client.connect(`/rooms/${room}?name=ann&since=1`);
    for (let i = 40; i < 60; i++) bob.send(`during ${i}`);

    await ann.next("welcome");
    const got = seqs((await ann.next("history")).messages);
    while (got.length < 60) {
      const frame = JSON.parse(await ann.nextText()) as { type: string; seq?: number };
      if (frame.type === "message") got.push(frame.seq!);
    }
    expect(got).toEqual(range(2, 61));
  });

  it("gives a message whose commit is still pending to someone joining then once, in the history", async () => {
    const room = uniqueRoom("pending");
    const bob = await Client.join(`/rooms/${room}?name=bob`);
    const ann = await runInDurableObject(stubOf(room), async (instance: Room) => {
      // Not awaited: the message is stored and its broadcast waits for the commit while Ann joins.
      const posted = instance.post({ name: "carl", text: "hello", address: "carl", client: null, identity: null });
      const joined = instance.fetch(new Request(`http://chat.test/rooms/${room}?name=ann`, { headers: { Upgrade: "websocket" } }));
      await posted;
      return Client.accept(await joined);
    });

    await ann.next("welcome");
    expect((await ann.next("history")).messages).toMatchObject([{ seq: 1, text: "hello" }]);
    bob.send("next");
    expect(await ann.next("message")).toMatchObject({ seq: 2, text: "next" });
    expect(await bob.next("message")).toMatchObject({ seq: 1, text: "hello" });
    expect(await bob.next("presence")).toMatchObject({ joined: [{ name: "ann" }] });
    expect(await bob.next("message")).toMatchObject({ seq: 2, text: "next" });
  });

  it("says gap, with the oldest seq kept, when the missed messages were trimmed", async () => {
    const room = uniqueRoom("gap");
    await seed(room, 1100);
    const ann = await Client.connect(`/rooms/${room}?since=50`);
    await ann.next("welcome");
    const history = await ann.next("history");
    expect(history).toMatchObject({ oldestSeq: 101, lastSeq: 1100, gap: true, reset: false, more: true });
    expect(seqs(history.messages)).toEqual(range(101, 300));
  });

  it("says reset, with the recent history, when since is ahead of the room", async () => {
    const room = uniqueRoom("reset");
    await seed(room, 3);
    const ann = await Client.connect(`/rooms/${room}?since=500`);
    await ann.next("welcome");
    const history = await ann.next("history");
    expect(history).toMatchObject({ oldestSeq: 1, lastSeq: 3, gap: false, reset: true });
    expect(seqs(history.messages)).toEqual([1, 2, 3]);
  });

  it("is nothing at all when the client is up to date", async () => {
    const room = uniqueRoom("up-to-date");
    await seed(room, 3);
    const ann = await Client.connect(`/rooms/${room}?since=3`);
    await ann.next("welcome");
    expect(await ann.next("history")).toMatchObject({ messages: [], gap: false, reset: false });
  });
});

describe("idempotent sends", () => {
  it("store and broadcast a resend after a reconnect once, and ack it with the original seq", async () => {
    const room = uniqueRoom("retry");
    const bob = await Client.join(`/rooms/${room}?name=bob`);
    const ann = await Client.join(`/rooms/${room}?name=ann&client=ann-phone`);
    await bob.presence({ joined: 1 });
    ann.send({ type: "message", text: "only once", id: "m-1" });
    await ann.next("message");
    const seq = (await ann.next("ack")).seq;
    ann.close();
    await ann.closed();

    const again = await Client.join(`/rooms/${room}?name=ann&client=ann-phone&since=${seq}`);
    again.send({ type: "message", text: "only once", id: "m-1" });
    expect(await again.next("ack")).toEqual({ type: "ack", id: "m-1", seq });
    again.send({ type: "message", text: "a new one", id: "m-2" });
    expect(await again.next("message")).toMatchObject({ seq: seq + 1, text: "a new one" });
    expect(await again.next("ack")).toEqual({ type: "ack", id: "m-2", seq: seq + 1 });

    const texts: string[] = [];
    for (;;) {
      const frame = JSON.parse(await bob.nextText()) as { type: string; text?: string };
      if (frame.type === "message") texts.push(frame.text!);
      if (frame.text === "a new one") break;
    }
    expect(texts).toEqual(["only once", "a new one"]);
    const page = await runInDurableObject(stubOf(room), (instance: Room) => read(instance.messages(0, 10, caller())));
    expect(page.messages.map((m) => m.text)).toEqual(["only once", "a new one"]);
  });

  it("refuse the same id with another text as id_conflict, storing nothing, instead of acknowledging the old message", async () => {
    const room = uniqueRoom("id-conflict");
    const ann = await Client.join(`/rooms/${room}?name=ann&client=ann-laptop`);
    ann.send({ type: "message", text: "first", id: "m-1" });
    await ann.next("message");
    expect(await ann.next("ack")).toMatchObject({ id: "m-1", seq: 1 });
    ann.send({ type: "message", text: "second", id: "m-1" });
    expect(await ann.next("error")).toMatchObject({ code: "id_conflict" });
    ann.send({ type: "message", text: "first", id: "m-1" });
    expect(await ann.next("ack")).toMatchObject({ id: "m-1", seq: 1 });
    const page = await runInDurableObject(stubOf(room), (instance: Room) => read(instance.messages(0, 10, caller())));
    expect(page.messages.map((m) => m.text)).toEqual(["first"]);
  });

  it("treat the same id from another client, or another anonymous connection, as another message", async () => {
    const room = uniqueRoom("scoped-ids");
    const a = await Client.join(`/rooms/${room}?client=a`);
    const b = await Client.join(`/rooms/${room}?client=b`);
    const anon = await Client.join(`/rooms/${room}`);
    a.send({ type: "message", text: "from a", id: "1" });
    expect(await a.skipTo("ack")).toMatchObject({ seq: 1 });
    b.send({ type: "message", text: "from b", id: "1" });
    expect(await b.skipTo("ack")).toMatchObject({ seq: 2 });
    anon.send({ type: "message", text: "from anon", id: "1" });
    expect(await anon.skipTo("ack")).toMatchObject({ seq: 3 });
    anon.close();
    await anon.closed();
    // Without ?client=, ids belong to the connection: a new one starts afresh.
    const anonAgain = await Client.join(`/rooms/${room}`);
    anonAgain.send({ type: "message", text: "from anon", id: "1" });
    expect(await anonAgain.skipTo("ack")).toMatchObject({ seq: 4 });
  });
});
