import { env, runInDurableObject } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { REPLY_EXCERPT_CHARS, type MessagePage, type ThreadPage } from "../src/protocol";
import { signToken } from "../src/auth/grant";
import { Client, uniqueRoom } from "./support/client";

const SECRET = "runtime-test-secret"; // as set for the runtime tests in vitest.config.ts

async function say(client: Client, frame: { text: string; replyTo?: number }, id: string): Promise<number> {
  client.send({ type: "message", ...frame, id });
  return (await client.skipTo("ack")).seq;
}

function get(room: string, query: string): Promise<Response> {
  return exports.default.fetch(`http://chat.test/api/rooms/${room}/messages${query}`);
}

describe("replies and threads", () => {
  it("carry the message they answer: its author and at most the first 100 characters of its text, live and in the text format", async () => {
    const room = uniqueRoom("reply-live");
    const ann = await Client.join(`/rooms/${room}?name=ann`);
    const bob = await Client.join(`/rooms/${room}?name=bob`);
    const tex = await Client.join(`/rooms/${room}?name=tex&format=text`);
    // Counted in code points: an emoji is one character, though two UTF-16 units.
    const long = `${"🌊".repeat(REPLY_EXCERPT_CHARS - 1)}ab\nmore`;
    const seq = await say(ann, { text: long }, "m1");
    const short = await say(ann, { text: 'say "hi"\nback' }, "m2");

    bob.send({ type: "message", text: "same here", replyTo: seq, id: "r1" });
    const reply = await ann.skipTo("message");
    expect(reply).toEqual(
      expect.objectContaining({
        seq: 3,
        text: "same here",
        replyTo: { seq, user: { id: "1", name: "ann" }, text: `${"🌊".repeat(REPLY_EXCERPT_CHARS - 1)}a` },
      }),
    );
    expect(await bob.skipTo("ack")).toEqual({ type: "ack", id: "r1", seq: 3 });
    await say(bob, { text: "ok", replyTo: short }, "r2");

    const lines: string[] = [];
    while (lines.length < 4) {
      const line = await tex.nextText();
      if (!line.includes("entered the chat room") && !line.startsWith("Time:")) lines.push(line);
    }
    expect(lines.slice(2)).toEqual([
      `bob (replying to ann: "${"🌊".repeat(REPLY_EXCERPT_CHARS - 1)}a"): same here`,
      'bob (replying to ann: "say \\"hi\\" back"): ok',
    ]);
  });

  it("are refused for a missing or deleted message, a malformed replyTo, and to a muted member", async () => {
    const room = uniqueRoom("reply-refused");
    const ann = await Client.join(`/rooms/${room}?name=ann`);
    const seq = await say(ann, { text: "soon gone" }, "m1");
    ann.send({ type: "message", text: "to nothing", replyTo: 42, id: "x1" });
    expect(await ann.skipTo("error")).toMatchObject({ id: "x1", code: "unknown_message", message: "message #42 is not in the room's history" });
    for (const replyTo of [0, -1, 1.5, "1", null]) {
      ann.send({ type: "message", text: "bad", replyTo, id: "x2" });
      expect(await ann.skipTo("error")).toMatchObject({ id: "x2", code: "bad_message" });
    }
    const kept = await say(ann, { text: "still here" }, "m2");
    ann.send({ type: "delete", seq });
    await ann.skipTo("delete");
    ann.send({ type: "message", text: "to the deleted", replyTo: seq, id: "x3" });
    expect(await ann.skipTo("error")).toMatchObject({ id: "x3", code: "unknown_message", message: `message #${seq} was deleted` });

    const token = await signToken(SECRET, { room, name: "mod", role: "moderator", exp: Math.floor(Date.now() / 1000) + 3600 });
    const mod = await Client.join(`/rooms/${room}?token=${token}`);
    mod.send({ type: "mute", user: "1", seconds: 60 });
    await mod.skipTo("moderated");
    ann.send({ type: "message", text: "muted reply", replyTo: kept, id: "x4" });
    expect(await ann.skipTo("error")).toMatchObject({ id: "x4", code: "muted" });
    expect((await (await get(room, "")).json<MessagePage>()).messages.map((m) => m.seq)).toEqual([seq, kept]);
  });

  it("are counted on the message they answer and listed in its thread, in order and paged, over the socket and HTTP", async () => {
    const room = uniqueRoom("thread");
    const ann = await Client.join(`/rooms/${room}?name=ann`);
    const bob = await Client.join(`/rooms/${room}?name=bob`);
    const root = await say(ann, { text: "plans?" }, "m1");
    const other = await say(ann, { text: "unrelated" }, "m2");
    const first = await say(bob, { text: "park", replyTo: root }, "r1");
    await say(ann, { text: "elsewhere", replyTo: other }, "r2");
    const second = await say(ann, { text: "beach", replyTo: root }, "r3");
    const third = await say(bob, { text: "both", replyTo: root }, "r4");

    const history = (await (await get(room, "")).json<MessagePage>()).messages;
    expect(history.map((m) => m.replies)).toEqual([3, 1, undefined, undefined, undefined, undefined]);

    ann.send({ type: "thread", seq: root, id: "t1" });
    const thread = await ann.skipTo("thread");
    expect(thread).toMatchObject({ type: "thread", id: "t1", seq: root, root: { seq: root, text: "plans?", replies: 3 }, more: false });
    expect(thread.messages.map((m) => [m.seq, m.text])).toEqual([
      [first, "park"],
      [second, "beach"],
      [third, "both"],
    ]);
    ann.send({ type: "thread", seq: root, after: second, id: "t2" });
    expect((await ann.skipTo("thread")).messages.map((m) => m.seq)).toEqual([third]);
    ann.send({ type: "thread", seq: 99, id: "t3" });
    expect(await ann.skipTo("error")).toMatchObject({ id: "t3", code: "unknown_message" });

    const firstPage = await (await get(room, `?thread=${root}&limit=2`)).json<ThreadPage>();
    expect(firstPage).toMatchObject({ seq: root, root: { seq: root }, more: true });
    expect(firstPage.messages.map((m) => m.seq)).toEqual([first, second]);
    const lastPage = await (await get(room, `?thread=${root}&after=${second}&limit=2`)).json<ThreadPage>();
    expect([lastPage.messages.map((m) => m.seq), lastPage.more]).toEqual([[third], false]);

    for (const [query, status, code] of [
      ["?thread=0", 400, "bad_thread"],
      ["?thread=x", 400, "bad_thread"],
      [`?thread=${root}&since=1`, 400, "bad_since"],
      [`?thread=${root}&after=-1`, 400, "bad_after"],
      ["?thread=77", 404, "unknown_message"],
    ] as const) {
      const response = await get(room, query);
      expect([query, response.status, (await response.json<{ code: string }>()).code]).toEqual([query, status, code]);
    }
  });

  it("lose the excerpt of a message deleted since, which is then nowhere in storage", async () => {
    const room = uniqueRoom("reply-deleted");
    const ann = await Client.join(`/rooms/${room}?name=ann`);
    const seq = await say(ann, { text: "my secret plan" }, "m1");
    await say(ann, { text: "oops", replyTo: seq }, "r1");
    ann.send({ type: "delete", seq });
    await ann.skipTo("delete");
    const [deleted, reply] = (await (await get(room, "")).json<MessagePage>()).messages;
    expect(deleted).toMatchObject({ seq, text: "", replies: 1 });
    expect(reply!.replyTo).toEqual({ seq, user: { id: "1", name: "ann" }, text: "", deleted: true });
    const stored = await runInDurableObject(env.ROOMS.getByName(room), (_, state) =>
      state.storage.sql
        .exec("SELECT * FROM messages")
        .toArray()
        .map((row) => JSON.stringify(row)),
    );
    expect(stored.filter((row) => row.includes("secret"))).toEqual([]);
  });

  it("over HTTP: a post may reply, and is refused for a missing message or a malformed replyTo", async () => {
    const room = uniqueRoom("reply-http");
    const ann = await Client.join(`/rooms/${room}?name=ann`);
    const seq = await say(ann, { text: "anyone?" }, "m1");
    const post = (body: object) =>
      exports.default.fetch(`http://chat.test/api/rooms/${room}/messages`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ name: "web", ...body }),
      });
    expect((await post({ text: "me", replyTo: seq })).status).toBe(201);
    expect(await ann.skipTo("message")).toMatchObject({ text: "me", user: { id: "http", name: "web" }, replyTo: { seq, text: "anyone?" } });
    const missing = await post({ text: "me", replyTo: 9 });
    expect([missing.status, (await missing.json<{ code: string }>()).code]).toEqual([404, "unknown_message"]);
    const malformed = await post({ text: "me", replyTo: "1" });
    expect([malformed.status, (await malformed.json<{ code: string }>()).code]).toEqual([400, "bad_message"]);
  });
});
