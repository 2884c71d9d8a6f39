import { env, evictDurableObject, runInDurableObject } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { signToken } from "../src/auth/grant";
import { History } from "../src/room/history";
import { replay } from "../src/room/replay";
import { lastPosition, type MessagePage } from "../src/protocol";
import { RoomStore } from "../src/room/store";
import { Client, uniqueRoom } from "./support/client";

const SECRET = "runtime-test-secret"; // as set for the runtime tests in vitest.config.ts
const now = () => Math.floor(Date.now() / 1000);
const token = (room: string, name: string, claims: { role?: "moderator"; sub?: string } = {}) =>
  signToken(SECRET, { room, name, exp: now() + 3600, ...claims });

async function page(room: string, query = ""): Promise<MessagePage> {
  const response = await exports.default.fetch(`http://chat.test/api/rooms/${room}/messages${query}`);
  expect(response.status).toBe(200);
  return response.json<MessagePage>();
}

/** Every text the room's table holds, in any row. */
async function storedTexts(room: string): Promise<string[]> {
  return runInDurableObject(env.ROOMS.getByName(room), (_, state) =>
    state.storage.sql
      .exec<{ text: string }>("SELECT text FROM messages")
      .toArray()
      .map((r) => r.text),
  );
}

/** Sends a message with an id and returns its seq, from the ack. */
async function say(client: Client, text: string, id: string): Promise<number> {
  client.send({ type: "message", text, id });
  return (await client.skipTo("ack")).seq;
}

describe("edits and deletes", () => {
  it("reach everyone live, each under its own seq, with the author's ack of it; the text format says what changed", async () => {
    const room = uniqueRoom("live");
    const ann = await Client.join(`/rooms/${room}?name=ann&client=ann-client-1`);
    const bob = await Client.join(`/rooms/${room}?name=bob`);
    const tex = await Client.join(`/rooms/${room}?name=tex&format=text`);
    const seq = await say(ann, "helo", "m1");
    expect(seq).toBe(1);

    ann.send({ type: "edit", seq, text: "  hello\r\nall  ", id: "e1" });
    const edit = await ann.skipTo("edit");
    expect(edit).toEqual({ type: "edit", seq: 1, change: 2, user: { id: "1", name: "ann" }, text: "hello\nall", editedAt: expect.any(Number) });
    expect(await ann.next("ack")).toEqual({ type: "ack", id: "e1", seq: 2 });
    expect(await bob.skipTo("edit")).toEqual(edit);

    ann.send({ type: "delete", seq, id: "d1" });
    const deletion = await bob.skipTo("delete");
    expect(deletion).toEqual({ type: "delete", seq: 1, change: 3, deletedAt: expect.any(Number) });
    expect(await ann.skipTo("delete")).toEqual(deletion);
    expect(await ann.next("ack")).toEqual({ type: "ack", id: "d1", seq: 3 });

    const lines: string[] = [];
    while (lines.length < 3) {
      const line = await tex.nextText();
      if (!line.includes("entered the chat room") && !line.startsWith("Time:")) lines.push(line);
    }
    expect(lines).toEqual(["ann: helo", "ann (edited): hello\n  all", "(a message was deleted)"]);
  });

  it("show in history and over HTTP as they are now: edited text with editedAt, a deleted message with its seq and no text anywhere in storage", async () => {
    const room = uniqueRoom("state");
    const ann = await Client.join(`/rooms/${room}?name=ann&client=ann-client-2`);
    await say(ann, "first draft", "m1");
    await say(ann, "my secret address", "m2");
    ann.send({ type: "edit", seq: 1, text: "second draft" });
    await ann.skipTo("edit");
    ann.send({ type: "edit", seq: 2, text: "still secret" });
    await ann.skipTo("edit");
    ann.send({ type: "delete", seq: 2 });
    await ann.skipTo("delete");

    const messages = [
      { type: "message", seq: 1, user: { id: "1", name: "ann" }, text: "second draft", at: expect.any(Number), editedAt: expect.any(Number) },
      { type: "message", seq: 2, user: { id: "1", name: "ann" }, text: "", at: expect.any(Number), deletedAt: expect.any(Number) },
    ];
    const bob = await Client.connect(`/rooms/${room}?name=bob`);
    expect(await bob.next("welcome")).toMatchObject({ lastSeq: 5 });
    expect(await bob.next("history")).toMatchObject({ messages, changes: [], lastSeq: 5 });
    expect(await page(room)).toMatchObject({ messages, changes: [], lastSeq: 5 });
    const tex = await Client.connect(`/rooms/${room}?name=tex&format=text`);
    await tex.nextText();
    expect(await tex.nextText()).toBe("ann (edited): second draft\n(a message was deleted)");

    // The deleted text, and the text of its edit, are gone; the delete's own row holds none.
    const texts = await storedTexts(room);
    expect(texts.some((t) => t.includes("secret"))).toBe(false);
    expect(texts).toEqual(["second draft", "", "second draft", ""]);
  });

  it("reach a client that resumes exactly once: as a change to a message it had, or already applied to one it did not", async () => {
    const room = uniqueRoom("resume");
    const ann = await Client.join(`/rooms/${room}?name=ann&client=ann-client-3`);
    for (const n of [1, 2, 3]) await say(ann, `m${n}`, `m${n}`);
    // bob had 1 to 3 when he went.
    ann.send({ type: "edit", seq: 1, text: "m1 fixed" }); // 4
    await ann.skipTo("edit");
    ann.send({ type: "delete", seq: 2 }); // 5
    await ann.skipTo("delete");
    await say(ann, "m6", "m6"); // 6
    ann.send({ type: "edit", seq: 6, text: "m6 fixed" }); // 7
    await ann.skipTo("edit");
    // Through hibernation: nothing here lives in memory.
    await evictDurableObject(env.ROOMS.getByName(room), { webSockets: "hibernate" });

    const bob = await Client.connect(`/rooms/${room}?name=bob&since=3`);
    await bob.next("welcome");
    const history = await bob.next("history");
    expect(history.messages).toEqual([expect.objectContaining({ seq: 6, text: "m6 fixed", editedAt: expect.any(Number) })]);
    expect(history.changes).toEqual([
      { type: "edit", seq: 1, change: 4, user: { id: "1", name: "ann" }, text: "m1 fixed", editedAt: expect.any(Number) },
      { type: "delete", seq: 2, change: 5, deletedAt: expect.any(Number) },
    ]);
    expect(history).toMatchObject({ lastSeq: 7, more: false, gap: false });

    // A client that went after 5 has none of them but the edit of 6, which its message already shows.
    const cat = await Client.connect(`/rooms/${room}?name=cat&since=5`);
    await cat.next("welcome");
    expect(await cat.next("history")).toMatchObject({ messages: [{ seq: 6, text: "m6 fixed" }], changes: [] });
    const dan = await Client.connect(`/rooms/${room}?name=dan&since=6`);
    await dan.next("welcome");
    expect(await dan.next("history")).toMatchObject({ messages: [], changes: [{ type: "edit", seq: 6, change: 7, text: "m6 fixed" }] });
    expect(await page(room, "?since=3")).toMatchObject({ messages: history.messages, changes: history.changes, lastSeq: 7 });
  });

  it("page a long resume by the room's sequence, and say there is more only when there is", async () => {
    await runInDurableObject(env.ROOMS.getByName(uniqueRoom("paged")), (_, state) => {
      const history = new History(state.storage, new RoomStore(state.storage.sql, [History.SCHEMA]));
      const ann = { user: { id: "1", name: "ann" }, at: 1, sender: "ann" };
      const edit = (target: number, text: string) => history.append({ ...ann, text, change: { kind: "edit", target } }, 100);
      history.append({ ...ann, text: "m1" }, 100);
      history.append({ ...ann, text: "m2" }, 100);
      for (const n of [3, 4, 5]) edit(1, `m1 v${n}`);
      history.append({ ...ann, text: "m6" }, 100);
      edit(6, "m6 v7");
      // Two entries a frame.
      const page = (since: number) => replay(history, { since, epoch: null }, 50, 2, "e");
      expect(page(2)).toMatchObject({ messages: [], changes: [{ change: 3 }, { change: 4 }], more: true });
      expect(lastPosition(page(2))).toBe(4);
      expect(page(4)).toMatchObject({ messages: [{ seq: 6, text: "m6 v7" }], changes: [{ change: 5 }], more: true });
      expect(page(6)).toMatchObject({ messages: [], changes: [{ seq: 6, change: 7 }], more: false });
      // The edit of 6 is already in 6's text: left out, it does not make the page look full.
      expect(page(5)).toMatchObject({ messages: [{ seq: 6 }], changes: [], more: false });
    });
  });

  it("are refused to anyone but the author, but for a moderator's delete, and to a muted author; nothing changes", async () => {
    const room = uniqueRoom("rights");
    const ann = await Client.join(`/rooms/${room}?name=ann&client=ann-client-5`);
    const bob = await Client.join(`/rooms/${room}?name=bob&client=bob-client-5`);
    const mod = await Client.join(`/rooms/${room}?token=${await token(room, "mod", { role: "moderator", sub: "mod-5" })}`);
    const seq = await say(ann, "ann's words", "m1");

    bob.send({ type: "edit", seq, text: "bob's words" });
    expect(await bob.skipTo("error")).toMatchObject({ code: "forbidden", message: "only its author may edit a message" });
    bob.send({ type: "delete", seq });
    expect(await bob.skipTo("error")).toMatchObject({ code: "forbidden", message: "only its author or a moderator may delete a message" });
    mod.send({ type: "edit", seq, text: "a moderator's words" });
    expect(await mod.skipTo("error")).toMatchObject({ code: "forbidden" });
    for (const frame of [
      { type: "edit", seq: 99, text: "x" },
      { type: "delete", seq: 99 },
    ]) {
      ann.send(frame);
      expect(await ann.skipTo("error")).toMatchObject({ code: "unknown_message", message: "message #99 is not in the room's history" });
    }
    expect((await page(room)).messages).toMatchObject([{ seq, text: "ann's words" }]);

    mod.send({ type: "mute", user: "1", seconds: 60 });
    await mod.skipTo("moderated");
    // A mute holds every write: a muted author can neither edit nor delete.
    ann.send({ type: "edit", seq, text: "muted words" });
    expect(await ann.skipTo("error")).toMatchObject({ code: "muted", until: expect.any(Number) });
    ann.send({ type: "delete", seq });
    expect(await ann.skipTo("error")).toMatchObject({ code: "muted" });
    expect((await page(room)).messages).toMatchObject([{ seq, text: "ann's words" }]);
    mod.send({ type: "unmute", user: "1" });
    await mod.skipTo("moderated");
    ann.send({ type: "delete", seq });
    const deleted = await bob.skipTo("delete");
    expect(deleted).toMatchObject({ seq, change: 2 });
    ann.send({ type: "delete", seq });
    expect(await ann.skipTo("error")).toMatchObject({ code: "unknown_message", message: `message #${seq} was deleted` });

    const other = await say(bob, "bob's words", "b1");
    mod.send({ type: "delete", seq: other });
    expect(await bob.skipTo("delete")).toMatchObject({ seq: other });
  });

  it("let an author change their message from another connection: the same client id, or the same token sub on any device", async () => {
    const room = uniqueRoom("author");
    const first = await Client.join(`/rooms/${room}?name=ann&client=ann-client-6`);
    const seq = await say(first, "from the first tab", "m1");
    first.close();
    const again = await Client.join(`/rooms/${room}?name=ann&client=ann-client-6`);
    again.send({ type: "edit", seq, text: "from the second tab" });
    expect(await again.skipTo("edit")).toMatchObject({ seq, text: "from the second tab" });

    const phone = await Client.join(`/rooms/${room}?token=${await token(room, "kim", { sub: "kim-6" })}&client=kim-phone`);
    const kimSeq = await say(phone, "from my phone", "k1");
    const laptop = await Client.join(`/rooms/${room}?token=${await token(room, "kim", { sub: "kim-6" })}&client=kim-laptop`);
    laptop.send({ type: "delete", seq: kimSeq });
    expect(await laptop.skipTo("delete")).toMatchObject({ seq: kimSeq });
    // Someone else with the name ann but another client id is not ann.
    const impostor = await Client.join(`/rooms/${room}?name=ann&client=someone-else`);
    impostor.send({ type: "delete", seq });
    expect(await impostor.skipTo("error")).toMatchObject({ code: "forbidden" });
  });

  it("are deduplicated by id like messages: a resend is acked again and changes nothing, and a resent message that was edited since stays one message", async () => {
    const room = uniqueRoom("resend");
    const ann = await Client.join(`/rooms/${room}?name=ann&client=ann-client-7`);
    const seq = await say(ann, "tpyo", "m1");
    ann.send({ type: "edit", seq, text: "typo", id: "e1" });
    expect(await ann.skipTo("ack")).toEqual({ type: "ack", id: "e1", seq: 2 });
    ann.send({ type: "edit", seq, text: "typo", id: "e1" });
    expect(await ann.next("ack")).toEqual({ type: "ack", id: "e1", seq: 2 });
    ann.send({ type: "edit", seq, text: "another text", id: "e1" });
    expect(await ann.next("error")).toMatchObject({ code: "id_conflict" });
    // The message's ack was lost, say, and it is sent again after the edit.
    ann.send({ type: "message", text: "tpyo", id: "m1" });
    expect(await ann.next("ack")).toEqual({ type: "ack", id: "m1", seq });
    ann.send({ type: "delete", seq, id: "d1" });
    expect(await ann.skipTo("ack")).toEqual({ type: "ack", id: "d1", seq: 3 });
    ann.send({ type: "delete", seq, id: "d1" });
    expect(await ann.next("ack")).toEqual({ type: "ack", id: "d1", seq: 3 });
    ann.send({ type: "message", text: "tpyo", id: "m1" });
    expect(await ann.next("ack")).toEqual({ type: "ack", id: "m1", seq });
    expect(await page(room)).toMatchObject({ lastSeq: 3, messages: [{ seq, text: "" }] });
  });

  it("are refused in words when malformed", async () => {
    const ann = await Client.join(`/rooms/${uniqueRoom("malformed")}?name=ann`);
    for (const [frame, code] of [
      [{ type: "edit", seq: -1, text: "x" }, "bad_message"],
      [{ type: "edit", seq: 1.5, text: "x" }, "bad_message"],
      [{ type: "delete", seq: "1" }, "bad_message"],
      [{ type: "delete" }, "bad_message"],
      [{ type: "edit", seq: 1 }, "bad_message"],
      [{ type: "edit", seq: 1, text: "   " }, "empty_message"],
      [{ type: "edit", seq: 1, text: "x".repeat(2001) }, "too_long"],
      [{ type: "delete", seq: 1, id: "" }, "bad_message"],
    ] as const) {
      ann.send(frame);
      expect(await ann.next("error"), JSON.stringify(frame)).toMatchObject({ code });
    }
  });

  it("let a moderator delete over HTTP with a bearer token, answered with the frame everyone got", async () => {
    const room = uniqueRoom("http-delete");
    const ann = await Client.join(`/rooms/${room}?name=ann&client=ann-client-8`);
    const seq = await say(ann, "spam", "m1");
    const post = async (body: unknown, bearer: string) =>
      exports.default.fetch(`http://chat.test/api/rooms/${room}/moderation`, {
        method: "POST",
        headers: { "Content-Type": "application/json", Authorization: `Bearer ${bearer}` },
        body: JSON.stringify(body),
      });
    const moderator = await token(room, "mod", { role: "moderator" });
    const response = await post({ type: "delete", seq }, moderator);
    expect(response.status).toBe(200);
    const answer = await response.json();
    expect(answer).toEqual({ type: "delete", seq, change: 2, deletedAt: expect.any(Number) });
    expect(await ann.skipTo("delete")).toEqual(answer);

    const again = await post({ type: "delete", seq }, moderator);
    expect(again.status).toBe(404);
    expect(await again.json()).toMatchObject({ code: "unknown_message" });
    const member = await post({ type: "delete", seq }, await token(room, "ann"));
    expect(member.status).toBe(403);
    expect(await member.json()).toMatchObject({ code: "forbidden" });
    for (const body of [
      { type: "delete", seq: -3 },
      { type: "delete", seq, id: "x" },
    ]) {
      const bad = await post(body, moderator);
      expect(bad.status).toBe(400);
      expect(await bad.json()).toMatchObject({ code: "bad_message" });
    }
  });
});

describe("a room stored before edits existed", () => {
  it("gains the columns edits need, and keeps its messages", async () => {
    await runInDurableObject(env.ROOMS.getByName(uniqueRoom("old-schema")), (_, state) => {
      const sql = state.storage.sql;
      sql.exec(`CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
        CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO meta (name, value) VALUES ('epoch', '0123456789abcdef');
        CREATE TABLE messages (seq INTEGER PRIMARY KEY, user_id TEXT NOT NULL, user_name TEXT NOT NULL, text TEXT NOT NULL, at INTEGER NOT NULL, sender TEXT NOT NULL, client_id TEXT);
        INSERT INTO messages VALUES (1, '1', 'ann', 'old words', 5, 'ann-client', 'm1')`);
      const history = new History(state.storage, new RoomStore(sql, [History.SCHEMA]));
      history.append({ user: { id: "1", name: "ann" }, text: "new words", at: 6, sender: "ann-client", change: { kind: "edit", target: 1 } }, 100);
      expect(history.latest(10)).toEqual([{ type: "message", seq: 1, user: { id: "1", name: "ann" }, text: "new words", at: 5, editedAt: 6 }]);
      expect(history.used("ann-client", "m1")).toMatchObject({ seq: 1, changed: true });
    });
  });
});
