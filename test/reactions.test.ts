import { env, evictDurableObject, runInDurableObject } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { signToken } from "../src/auth/grant";
import { MAX_EMOJI_PER_MESSAGE, type MessagePage, type Reaction, type ReactionsFrame } from "../src/protocol";
import { History } from "../src/room/history";
import { RoomStore } from "../src/room/store";
import { Client, uniqueRoom } from "./support/client";
import { fastClock, seededRandom } from "./support/clock";

const SECRET = "runtime-test-secret"; // as set for the runtime tests in vitest.config.ts
const moderatorToken = (room: string) => signToken(SECRET, { room, name: "mod", role: "moderator", sub: "mod-1", exp: Math.floor(Date.now() / 1000) + 3600 });

async function say(client: Client, text: string, id: string): Promise<number> {
  client.send({ type: "message", text, id });
  return (await client.skipTo("ack")).seq;
}

async function page(room: string, query = ""): Promise<MessagePage> {
  const response = await exports.default.fetch(`http://chat.test/api/rooms/${room}/messages${query}`);
  expect(response.status).toBe(200);
  return response.json<MessagePage>();
}

/** The reactions rows the room keeps for message `seq`. */
async function reactionRows(room: string, seq: number): Promise<number> {
  return runInDurableObject(
    env.ROOMS.getByName(room),
    (_, state) => state.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM reactions WHERE target = ?", seq).one().n,
  );
}

function react(room: string, body: object, query = "?client=web-1"): Promise<Response> {
  return exports.default.fetch(`http://chat.test/api/rooms/${room}/reactions${query}`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
}

describe("reactions", () => {
  it("reach everyone as the message's whole summary under the next seq, acknowledged to the reactor; the text format says who reacted to whose message", async () => {
    const room = uniqueRoom("react-live");
    const ann = await Client.join(`/rooms/${room}?name=ann`);
    const bob = await Client.join(`/rooms/${room}?name=bob`);
    const tex = await Client.join(`/rooms/${room}?name=tex&format=text`);
    const seq = await say(ann, "lunch?", "m1");

    bob.send({ type: "react", seq, emoji: "👍", id: "r1" });
    const first = await ann.skipTo("reactions");
    expect(first).toEqual({
      type: "reactions",
      seq,
      change: 2,
      reactions: [{ emoji: "👍", count: 1, users: ["2"] }],
      user: { id: "2", name: "bob" },
      emoji: "👍",
      author: { id: "1", name: "ann" },
    });
    expect(await bob.skipTo("reactions")).toEqual(first);
    expect(await bob.next("ack")).toEqual({ type: "ack", id: "r1", seq: 2 });

    ann.send({ type: "react", seq, emoji: "👍" });
    ann.send({ type: "react", seq, emoji: ":taco:" });
    await ann.skipTo("reactions");
    expect((await ann.skipTo("reactions")).reactions).toEqual([
      { emoji: "👍", count: 2, users: ["2", "1"] },
      { emoji: ":taco:", count: 1, users: ["1"] },
    ]);
    bob.send({ type: "unreact", seq, emoji: "👍", id: "u1" });
    const taken = await ann.skipTo("reactions");
    expect(taken).toMatchObject({
      change: 5,
      removed: true,
      emoji: "👍",
      reactions: [
        { emoji: "👍", count: 1, users: ["1"] },
        { emoji: ":taco:", count: 1 },
      ],
    });

    const lines: string[] = [];
    while (lines.length < 5) {
      const line = await tex.nextText();
      if (!line.includes("entered the chat room") && !line.startsWith("Time:")) lines.push(line);
    }
    expect(lines).toEqual([
      "ann: lunch?",
      "bob reacted 👍 to ann's message",
      "ann reacted 👍 to ann's message",
      "ann reacted :taco: to ann's message",
      "bob took back 👍 from ann's message",
    ]);
  });

  it("are one per person per emoji: reacting again, or taking back what is not there, changes nothing and takes no seq; a resend with its id is acknowledged again", async () => {
    const room = uniqueRoom("react-once");
    const ann = await Client.join(`/rooms/${room}?name=ann&client=ann-react`);
    const seq = await say(ann, "hello", "m1");
    ann.send({ type: "react", seq, emoji: "🎉", id: "r1" });
    await ann.skipTo("reactions");
    expect(await ann.next("ack")).toEqual({ type: "ack", id: "r1", seq: 2 });

    // The same person again, from another connection of the same client: nothing new.
    ann.close();
    const again = await Client.join(`/rooms/${room}?name=ann&client=ann-react`);
    again.send({ type: "react", seq, emoji: "🎉", id: "r2" });
    expect(await again.skipTo("ack")).toEqual({ type: "ack", id: "r2", seq });
    again.send({ type: "unreact", seq, emoji: "😢", id: "u1" });
    expect(await again.skipTo("ack")).toEqual({ type: "ack", id: "u1", seq });
    again.send({ type: "react", seq, emoji: "🎉", id: "r1" });
    expect(await again.skipTo("ack")).toEqual({ type: "ack", id: "r1", seq: 2 });
    expect(again.unread().filter((f) => f.includes('"reactions"'))).toEqual([]);
    expect((await page(room)).lastSeq).toBe(2);
    expect(await reactionRows(room, seq)).toBe(1);
  });

  it("are refused for a bad emoji, a missing or deleted message, past the distinct-emoji bound, and to a muted member", async () => {
    const room = uniqueRoom("react-refused");
    const mod = await Client.join(`/rooms/${room}?token=${await moderatorToken(room)}`);
    const ann = await Client.join(`/rooms/${room}?name=ann`);
    const bob = await Client.join(`/rooms/${room}?name=bob`);
    const seq = await say(ann, "react to me", "m1");

    for (const emoji of ["a", "👍👍", "👍 ", ":Upper:", `:${"x".repeat(31)}:`, 7, ""]) {
      ann.send({ type: "react", seq, emoji, id: "bad" });
      expect(await ann.skipTo("error")).toMatchObject({ id: "bad", code: "bad_emoji" });
    }
    ann.send({ type: "react", seq: 99, emoji: "👍", id: "gone" });
    expect(await ann.skipTo("error")).toMatchObject({ id: "gone", code: "unknown_message", message: "message #99 is not in the room's history" });

    // Two people fill the message's emoji; a third emoji past the bound is refused, an existing one is not.
    const emoji = Array.from({ length: MAX_EMOJI_PER_MESSAGE }, (_, i) => String.fromCodePoint(0x1f600 + i));
    for (const [i, e] of emoji.entries()) (i % 2 === 0 ? ann : bob).send({ type: "react", seq, emoji: e, id: `e${i}` });
    for (const [i] of emoji.entries()) if (i % 2 === 1) await bob.skipTo("ack");
    for (const [i] of emoji.entries()) if (i % 2 === 0) await ann.skipTo("ack");
    mod.send({ type: "react", seq, emoji: "🦄", id: "one-too-many" });
    expect(await mod.skipTo("error")).toMatchObject({ id: "one-too-many", code: "too_many_reactions" });
    mod.send({ type: "react", seq, emoji: emoji[0], id: "existing" });
    expect(await mod.skipTo("ack")).toMatchObject({ id: "existing" });

    mod.send({ type: "mute", user: "3", seconds: 60 });
    await mod.skipTo("moderated");
    bob.send({ type: "react", seq, emoji: "🙏", id: "muted" });
    expect(await bob.skipTo("error")).toMatchObject({ id: "muted", code: "muted", until: expect.any(Number) });

    mod.send({ type: "delete", seq });
    await ann.skipTo("delete");
    ann.send({ type: "react", seq, emoji: "👍", id: "deleted" });
    expect(await ann.skipTo("error")).toMatchObject({ id: "deleted", code: "unknown_message", message: `message #${seq} was deleted` });
  });

  it("show in history and over HTTP with each message; a resume after hibernation learns those made while away, each message's once; a delete takes them all", async () => {
    const room = uniqueRoom("react-resume");
    const ann = await Client.join(`/rooms/${room}?name=ann`);
    const bob = await Client.join(`/rooms/${room}?name=bob`);
    const one = await say(ann, "one", "m1");
    const two = await say(ann, "two", "m2");
    bob.close();

    ann.send({ type: "react", seq: one, emoji: "👍" });
    ann.send({ type: "react", seq: one, emoji: "❤️" });
    ann.send({ type: "react", seq: two, emoji: "👀" });
    for (let i = 0; i < 3; i++) await ann.skipTo("reactions");
    await evictDurableObject(env.ROOMS.getByName(room), { webSockets: "hibernate" });

    const back = await Client.connect(`/rooms/${room}?name=bob&since=${two}`);
    await back.next("welcome");
    const history = await back.next("history");
    expect(history.messages).toEqual([]);
    // One summary per message: the newest, which replaced the rows before it.
    expect(history.changes).toEqual([
      expect.objectContaining({
        type: "reactions",
        seq: one,
        change: 4,
        reactions: [
          { emoji: "👍", count: 1, users: ["1"] },
          { emoji: "❤️", count: 1, users: ["1"] },
        ],
      }),
      expect.objectContaining({ type: "reactions", seq: two, change: 5, reactions: [{ emoji: "👀", count: 1, users: ["1"] }] }),
    ] satisfies Partial<ReactionsFrame>[]);

    const fresh = await Client.connect(`/rooms/${room}?name=cat`);
    await fresh.next("welcome");
    expect((await fresh.next("history")).messages.map((m) => m.reactions)).toEqual([
      [
        { emoji: "👍", count: 1, users: ["1"] },
        { emoji: "❤️", count: 1, users: ["1"] },
      ],
      [{ emoji: "👀", count: 1, users: ["1"] }],
    ]);
    expect((await page(room)).messages[1]!.reactions).toEqual([{ emoji: "👀", count: 1, users: ["1"] }]);

    ann.send({ type: "delete", seq: one });
    await ann.skipTo("delete");
    expect((await page(room)).messages[0]).not.toHaveProperty("reactions");
    expect(await reactionRows(room, one)).toBe(0);
    expect((await page(room, "?since=2")).changes.map((c) => c.type)).toEqual(["reactions", "delete"]);
  });

  it("leave the room's tables with the messages they were on when history is trimmed", async () => {
    const room = uniqueRoom("react-trim");
    const ann = await Client.join(`/rooms/${room}?name=ann`);
    const seq = await say(ann, "soon trimmed", "m1");
    await say(ann, "kept", "m2");
    ann.send({ type: "react", seq, emoji: "👍" });
    await ann.skipTo("reactions");
    expect(await reactionRows(room, seq)).toBe(1);
    await runInDurableObject(env.ROOMS.getByName(room), (_, state) => {
      new History(state.storage, new RoomStore(state.storage.sql, [])).trim(2, 1);
    });
    expect(await reactionRows(room, seq)).toBe(0);
  });

  it("over HTTP: one per token account or ?client=, broadcast as from a socket; refused without either, for a bad emoji or an unknown message", async () => {
    const room = uniqueRoom("react-http");
    const ann = await Client.join(`/rooms/${room}?name=ann`);
    const seq = await say(ann, "vote here", "m1");

    const added = await react(room, { type: "react", seq, emoji: "✅", name: "web" });
    expect(added.status).toBe(201);
    expect(await added.json()).toEqual({ seq: 2, duplicate: false });
    expect(await ann.skipTo("reactions")).toMatchObject({
      seq,
      change: 2,
      user: { id: "http", name: "web" },
      reactions: [{ emoji: "✅", count: 1, users: ["http"] }],
    });
    const again = await react(room, { type: "react", seq, emoji: "✅", name: "web" });
    expect([again.status, await again.json()]).toEqual([200, { seq, duplicate: true }]);
    const other = await react(room, { type: "react", seq, emoji: "✅", name: "web" }, "?client=web-2");
    expect(other.status).toBe(201);
    expect((await ann.skipTo("reactions")).reactions).toEqual([{ emoji: "✅", count: 2, users: ["http", "http"] }]);

    const anonymous = await react(room, { type: "react", seq, emoji: "✅", name: "web" }, "");
    expect([anonymous.status, (await anonymous.json<{ code: string }>()).code]).toEqual([400, "client_required"]);
    const badEmoji = await react(room, { type: "react", seq, emoji: "yes", name: "web" });
    expect([badEmoji.status, (await badEmoji.json<{ code: string }>()).code]).toEqual([400, "bad_emoji"]);
    const unknown = await react(room, { type: "unreact", seq: 40, emoji: "✅", name: "web" });
    expect([unknown.status, (await unknown.json<{ code: string }>()).code]).toEqual([404, "unknown_message"]);
    const nameless = await react(room, { type: "react", seq, emoji: "✅" });
    expect([nameless.status, (await nameless.json<{ code: string }>()).code]).toEqual([400, "bad_name"]);
  });

  it("add up, over any sequence of reactions and take-backs by several people, to what a model of them says, live and in history", async () => {
    fastClock(); // every reading a second later: rate limits stay out, and reactions are in a known order
    const next = seededRandom(23);
    const room = uniqueRoom("react-property");
    const people = [await Client.join(`/rooms/${room}?name=p1`), await Client.join(`/rooms/${room}?name=p2`), await Client.join(`/rooms/${room}?name=p3`)];
    const [first] = people;
    const watcher = await Client.join(`/rooms/${room}?name=watcher`);
    const seqs = [await say(first!, "one", "m1"), await say(first!, "two", "m2")];
    const emoji = ["👍", "❤️", ":ship-it:", "🇫🇷"];
    // Per message: emoji in the order first used, each with who reacted, in order.
    const model = new Map<number, Array<{ emoji: string; users: string[] }>>(seqs.map((seq) => [seq, []]));
    const last = new Map<number, Reaction[]>();

    for (let i = 0; i < 120; i++) {
      const who = Math.floor(next() * people.length);
      const seq = seqs[Math.floor(next() * seqs.length)]!;
      const e = emoji[Math.floor(next() * emoji.length)]!;
      const add = next() < 0.6;
      const id = String(who + 1);
      people[who]!.send({ type: add ? "react" : "unreact", seq, emoji: e, id: `op${i}` });
      const ack = await people[who]!.skipTo("ack");
      const entries = model.get(seq)!;
      const entry = entries.find((r) => r.emoji === e);
      const changes = add ? !entry?.users.includes(id) : entry?.users.includes(id) === true;
      expect(ack.seq === seq, `op ${i}: a reaction that changes nothing is acknowledged with the message's seq`).toBe(!changes);
      if (!changes) continue;
      if (add && entry === undefined) entries.push({ emoji: e, users: [id] });
      else if (add) entry!.users.push(id);
      else {
        entry!.users.splice(entry!.users.indexOf(id), 1);
        if (entry!.users.length === 0) entries.splice(entries.indexOf(entry!), 1);
      }
      const frame = await watcher.skipTo("reactions");
      expect(frame.change).toBe(ack.seq);
      last.set(seq, frame.reactions);
      expect(frame.reactions, `op ${i}`).toEqual(entries.map((r) => ({ emoji: r.emoji, count: r.users.length, users: r.users })));
    }
    const messages = (await page(room)).messages;
    for (const message of messages) expect(message.reactions ?? []).toEqual(last.get(message.seq) ?? []);
    expect(last.size).toBe(2);
  });
});
