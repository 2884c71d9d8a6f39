import { exports } from "cloudflare:workers";
import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { Client, uniqueRoom } from "./support/client";

const stubOf = (room: string) => env.ROOMS.getByName(room);

/** The tables the room made in its storage (not the runtime's own). */
const tables = (room: string) =>
  runInDurableObject(stubOf(room), (_, state) =>
    state.storage.sql
      .exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%'")
      .toArray()
      .map((t) => t.name)
      .sort(),
  );

describe("a room's storage", () => {
  it("is not created by reading the room: any name is free to ask about, so asking must cost no storage", async () => {
    const room = uniqueRoom("read-only");
    for (const path of [`/api/rooms/${room}`, `/api/rooms/${room}/messages`, `/api/rooms/${room}/messages?since=3`, `/api/rooms/${room}/search?q=hello`]) {
      const response = await exports.default.fetch(`http://chat.test${path}`);
      expect(response.status, path).toBe(200);
    }
    expect(await (await exports.default.fetch(`http://chat.test/api/rooms/${room}/messages`)).json()).toEqual({
      messages: [],
      changes: [],
      oldestSeq: 0,
      lastSeq: 0,
      gap: false,
      epoch: null,
    });
    expect(await tables(room)).toEqual([]);
  });

  it("is given back whole when the last person leaves a room that has no messages", async () => {
    const room = uniqueRoom("emptied");
    const ann = await Client.join(`/rooms/${room}?name=ann`);
    const bob = await Client.join(`/rooms/${room}?name=bob`);
    expect(await tables(room)).toEqual([
      "accounts",
      "addresses",
      "counters",
      "messages",
      // The search index, and the tables FTS5 keeps it in.
      "messages_fts",
      "messages_fts_config",
      "messages_fts_data",
      "messages_fts_idx",
      "meta",
      "reactions",
      "reads",
      "remote_members",
      "sanctions",
    ]);
    ann.close();
    await bob.presence({ left: 1 });
    expect(await tables(room)).not.toEqual([]);
    bob.close();
    await bob.closed();
    await expect.poll(() => tables(room), { message: "the room's tables once nobody is left" }).toEqual([]);
    expect(await runInDurableObject(stubOf(room), (_, state) => state.storage.getAlarm())).toBeNull();

    // And it starts afresh, counting people from 1 again.
    const cat = await Client.connect(`/rooms/${room}?name=cat`);
    expect((await cat.next("welcome")).you.id).toBe("1");
  });

  it("is kept, with its history, when the last person leaves a room that has messages", async () => {
    const room = uniqueRoom("kept");
    const ann = await Client.join(`/rooms/${room}?name=ann`);
    ann.send("worth keeping");
    await ann.next("message");
    ann.close();
    await ann.closed();
    const page = await (await exports.default.fetch(`http://chat.test/api/rooms/${room}/messages`)).json<{ messages: { text: string }[] }>();
    expect(page.messages.map((m) => m.text)).toEqual(["worth keeping"]);
    expect(await tables(room)).toContain("messages");
  });
});
