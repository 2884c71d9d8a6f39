import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { signToken } from "../src/auth/grant";
import { MAX_MENTIONS, type Mention, type MessagePage } from "../src/protocol";
import { mentionsIn, nameKey } from "../src/room/mentions";
import { Client, uniqueRoom } from "./support/client";

const SECRET = "runtime-test-secret"; // as set for the runtime tests in vitest.config.ts
const token = (room: string, name: string, sub: string) => signToken(SECRET, { room, name, sub, exp: Math.floor(Date.now() / 1000) + 3600 });

/** A directory of people, looked up by `nameKey` as the room does. */
function people(...names: string[]): (key: string) => Mention[] {
  const all = names.map((name, i) => ({ id: String(i + 1), name }));
  return (key) => all.filter((p) => nameKey(p.name) === key);
}
const named = (text: string, find: (key: string) => Mention[]) => mentionsIn(text, find).map((m) => m.name);

describe("finding mentions in a text", () => {
  it("takes the longest name the text goes on with, whatever the case, and names with spaces", () => {
    const find = people("Mary", "Mary Ann", "bob");
    expect(named("hi @mary ann, and @Mary!", find)).toEqual(["Mary Ann", "Mary"]);
    expect(named("@BOB: look", find)).toEqual(["bob"]);
    expect(named("@mary annabel", find)).toEqual(["Mary"]);
  });

  it("needs the name to end where a word ends, and the @ not to follow one, as in an address", () => {
    const find = people("ann", "ann.", "ann-marie");
    expect(named("@annie @ann_2 ann@example.com", find)).toEqual([]);
    expect(named("(@ann)", find)).toEqual(["ann"]);
    expect(named("thanks @ann. and @ann-marie", find)).toEqual(["ann.", "ann-marie"]);
  });

  it("names everyone of that name, each person once, and stops at MAX_MENTIONS", () => {
    const twins = (key: string) =>
      key === "kim"
        ? [
            { id: "1", name: "kim" },
            { id: "2", name: "Kim" },
          ]
        : [];
    expect(mentionsIn("@kim @KIM", twins)).toEqual([
      { id: "1", name: "kim" },
      { id: "2", name: "Kim" },
    ]);
    const crowd = people(...Array.from({ length: MAX_MENTIONS + 5 }, (_, i) => `p${i}`));
    expect(mentionsIn(Array.from({ length: MAX_MENTIONS + 5 }, (_, i) => `@p${i}`).join(" "), crowd)).toHaveLength(MAX_MENTIONS);
  });
});

describe("mentions", () => {
  it("name people online and token accounts that have been in the room, resolved when the message is stored, live, in history and over HTTP", async () => {
    const room = uniqueRoom("mentions");
    const ann = await Client.join(`/rooms/${room}?name=ann`);
    // Remembered with the room's history: a room that keeps nothing forgets its accounts too.
    ann.send({ type: "message", text: "welcome, everyone", id: "m0" });
    await ann.skipTo("ack");
    const away = await Client.join(`/rooms/${room}?token=${await token(room, "Dr Who", "acct-who")}`);
    away.close();
    await ann.presence({ joined: 1, left: 1 });
    const bob = await Client.join(`/rooms/${room}?name=Bob Smith`);

    ann.send({ type: "message", text: "@bob smith and @Dr Who, and @nobody", id: "m1" });
    const live = await bob.skipTo("message");
    expect(live.mentions).toEqual([
      { id: "3", name: "Bob Smith" },
      { id: "2", name: "Dr Who", account: "acct-who" },
    ]);
    ann.send({ type: "message", text: "no one here", id: "m2" });
    expect(await bob.skipTo("message")).not.toHaveProperty("mentions");

    const post = await exports.default.fetch(`http://chat.test/api/rooms/${room}/messages`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ name: "web", text: "ping @ann" }),
    });
    expect(post.status).toBe(201);
    expect((await bob.skipTo("message")).mentions).toEqual([{ id: "1", name: "ann" }]);

    const page = await (await exports.default.fetch(`http://chat.test/api/rooms/${room}/messages`)).json<MessagePage>();
    expect(page.messages.map((m) => m.mentions?.map((p) => p.name))).toEqual([undefined, ["Bob Smith", "Dr Who"], undefined, ["ann"]]);
  });

  it("follow an edit's new text, in the edit and in history", async () => {
    const room = uniqueRoom("mentions-edit");
    const ann = await Client.join(`/rooms/${room}?name=ann`);
    await Client.join(`/rooms/${room}?name=bob`);
    ann.send({ type: "message", text: "hi @ann", id: "m1" });
    const { seq } = await ann.skipTo("ack");
    ann.send({ type: "edit", seq, text: "hi @bob" });
    expect((await ann.skipTo("edit")).mentions).toEqual([{ id: "2", name: "bob" }]);
    const page = await (await exports.default.fetch(`http://chat.test/api/rooms/${room}/messages`)).json<MessagePage>();
    expect(page.messages[0]!.mentions).toEqual([{ id: "2", name: "bob" }]);
  });
});
