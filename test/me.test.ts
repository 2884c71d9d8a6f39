import { env, evictDurableObject, runInDurableObject } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { Account } from "../src/account/account";
import { signToken } from "../src/auth/grant";
import type { DirectRoom, MessagePage, MyRooms } from "../src/protocol";
import { Client, uniqueRoom } from "./support/client";
import { frozenClock } from "./support/clock";

const SECRET = "runtime-test-secret"; // as set for the runtime tests in vitest.config.ts
const hour = () => Math.floor(Date.now() / 1000) + 3600;
/** A token for every room, for the account `sub`. */
const everywhere = (name: string, sub?: string) => signToken(SECRET, { room: "*", name, exp: hour(), ...(sub !== undefined && { sub }) });

function api(path: string, token: string | null, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (token !== null) headers.set("Authorization", `Bearer ${token}`);
  return exports.default.fetch(`http://chat.test${path}`, { ...init, headers });
}

async function myRooms(token: string): Promise<MyRooms> {
  const response = await api("/api/me/rooms", token);
  expect(response.status).toBe(200);
  return response.json<MyRooms>();
}

async function say(client: Client, text: string): Promise<number> {
  client.send({ type: "message", text, id: crypto.randomUUID() });
  return (await client.skipTo("ack")).seq;
}

async function dm(token: string, to: string): Promise<Response> {
  return api("/api/dms", token, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ to }) });
}

describe("a person's rooms", () => {
  it("need a token for every room that names an account", async () => {
    expect((await api("/api/me/rooms", null)).status).toBe(401);
    const forOneRoom = await signToken(SECRET, { room: "lobby", name: "ann", sub: "acct-1", exp: hour() });
    expect(await (await api("/api/me/rooms", forOneRoom)).json()).toMatchObject({ code: "bad_token" });
    const nobody = await api("/api/me/rooms", await everywhere("ann"));
    expect([nobody.status, (await nobody.json<{ message: string }>()).message]).toEqual([403, "the token names no account: it needs a `sub` claim"]);
  });

  it("list every room the account joined, newest activity first, with what it has not read and what mentions it, after hibernation too", async () => {
    const ann = await everywhere("ann", "acct-ann");
    const quiet = uniqueRoom("quiet");
    const busy = uniqueRoom("busy");
    const older = uniqueRoom("older");
    const bob = await Client.join(`/rooms/${older}?name=bob`);
    await say(bob, "a while ago");
    // Someone stays in the busy room, which therefore remembers ann's account when she has left.
    const cat = await Client.join(`/rooms/${busy}?name=cat`);
    for (const room of [quiet, older, busy]) (await Client.join(`/rooms/${room}?token=${ann}`)).close();
    await say(bob, "still here");
    await say(cat, "hi @ann");
    await say(cat, "anyone?");

    await expect.poll(async () => (await myRooms(ann)).rooms.map((r) => r.room), { message: "the three rooms, once listed" }).toEqual([busy, older, quiet]);
    for (const object of [env.ROOMS.getByName(busy), env.ACCOUNTS.getByName("acct-ann")]) await evictDurableObject(object);
    const { rooms } = await myRooms(ann);
    expect(rooms).toEqual([
      { room: busy, lastSeq: 2, lastAt: expect.any(Number), read: 0, unread: 2, mentions: 1 },
      { room: older, lastSeq: 2, lastAt: expect.any(Number), read: 0, unread: 2, mentions: 0 },
      { room: quiet, lastSeq: 0, lastAt: null, read: 0, unread: 0, mentions: 0 },
    ]);
  });

  it("count only what came after the account's read position, by others, and not deleted", async () => {
    const ann = await everywhere("ann", "acct-reader");
    const room = uniqueRoom("read-here");
    const annSocket = await Client.join(`/rooms/${room}?token=${ann}`);
    const bob = await Client.join(`/rooms/${room}?name=bob`);
    const first = await say(bob, "@ann first");
    await say(bob, "second");
    const gone = await say(bob, "@ann soon deleted");
    await say(annSocket, "my own");
    const summary = async () => (await myRooms(ann)).rooms.find((r) => r.room === room);
    await expect.poll(summary, { message: "the room, listed" }).toMatchObject({ read: 0, unread: 3, mentions: 2 });
    bob.send({ type: "delete", seq: gone });
    await bob.skipTo("delete");
    annSocket.send({ type: "read", seq: first });
    await expect.poll(summary, { message: "the read position, counted" }).toMatchObject({ read: first, unread: 1, mentions: 0 });
  });

  it("cost nothing per message: rooms tell an account's object of a join, never of a message", async () => {
    const room = uniqueRoom("cheap");
    const joined = vi.spyOn(Account.prototype, "joined");
    const ann = await Client.join(`/rooms/${room}?token=${await everywhere("ann", "acct-cheap")}`);
    await expect.poll(() => joined.mock.calls.length, { message: "the join told to ann's object" }).toBe(1);
    for (let i = 0; i < 5; i++) await say(ann, `message ${i}`);
    const bob = await Client.join(`/rooms/${room}?name=bob`);
    await say(bob, "and one by someone without an account");
    expect(joined).toHaveBeenCalledTimes(1);
  });

  it("leave the list for good with DELETE, until the account joins again", async () => {
    const ann = await everywhere("ann", "acct-leaver");
    const room = uniqueRoom("left");
    (await Client.join(`/rooms/${room}?token=${ann}`)).close();
    await expect.poll(async () => (await myRooms(ann)).rooms.length, { message: "the room listed" }).toBe(1);
    expect((await api(`/api/me/rooms/${room}`, ann, { method: "DELETE" })).status).toBe(204);
    expect((await myRooms(ann)).rooms).toEqual([]);
    (await Client.join(`/rooms/${room}?token=${ann}`)).close();
    await expect.poll(async () => (await myRooms(ann)).rooms.map((r) => r.room), { message: "the room listed again" }).toEqual([room]);
    expect((await api("/api/me/rooms/bad%2Fname", ann, { method: "DELETE" })).status).toBe(400);
  });

  it("may be asked for 10 times per 10 s per account", async () => {
    frozenClock();
    const ann = await everywhere("ann", "acct-eager");
    for (let i = 0; i < 10; i++) expect((await api("/api/me/rooms", ann)).status).toBe(200);
    const refused = await api("/api/me/rooms", ann);
    expect(refused.status).toBe(429);
    expect(refused.headers.get("Retry-After")).not.toBeNull();
  });
});

describe("direct messages", () => {
  it("open one room for two accounts, the same whichever asks, listed for both", async () => {
    const ann = await everywhere("ann", "acct-dm-ann");
    const bob = await everywhere("bob", "acct-dm-bob");
    const opened = await dm(ann, "acct-dm-bob");
    expect(opened.status).toBe(201);
    const { room, with: other } = await opened.json<DirectRoom>();
    expect([room, other]).toEqual([expect.stringMatching(/^dm-[0-9a-f]{32}$/), "acct-dm-bob"]);
    const again = await dm(bob, "acct-dm-ann");
    expect([again.status, (await again.json<DirectRoom>()).room]).toEqual([200, room]);
    expect((await myRooms(ann)).rooms).toEqual([expect.objectContaining({ room, with: "acct-dm-bob" })]);
    expect((await myRooms(bob)).rooms).toEqual([expect.objectContaining({ room, with: "acct-dm-ann" })]);
  });

  it("let the two in, with history, resume, edits and reactions, and either may delete; anyone else gets 403, no token 401", async () => {
    const ann = await everywhere("ann", "acct-pair-ann");
    const bob = await everywhere("bob", "acct-pair-bob");
    const { room } = await (await dm(ann, "acct-pair-bob")).json<DirectRoom>();
    const annSocket = await Client.join(`/rooms/${room}?token=${ann}`);
    const seq = await say(annSocket, "just between us");
    annSocket.send({ type: "edit", seq, text: "just between us two" });
    await annSocket.skipTo("edit");
    const bobSocket = await Client.connect(`/rooms/${room}?token=${bob}&since=0`);
    await bobSocket.next("welcome");
    expect((await bobSocket.next("history")).messages).toMatchObject([{ seq, text: "just between us two" }]);
    bobSocket.send({ type: "react", seq, emoji: "🤫", id: "r1" });
    expect(await annSocket.skipTo("reactions")).toMatchObject({ seq, reactions: [{ emoji: "🤫", count: 1 }] });
    bobSocket.send({ type: "delete", seq, id: "d1" });
    expect(await annSocket.skipTo("delete")).toMatchObject({ seq });

    const eve = await everywhere("eve", "acct-eve");
    const refused = await exports.default.fetch(`http://chat.test/rooms/${room}?token=${eve}`, { headers: { Upgrade: "websocket" } });
    expect([refused.status, (await refused.json<{ code: string }>()).code]).toEqual([403, "forbidden"]);
    const read = await api(`/api/rooms/${room}/messages`, eve);
    expect(read.status).toBe(403);
    expect((await api(`/api/rooms/${room}/search?q=between`, eve)).status).toBe(403);
    expect((await api(`/api/rooms/${room}/search?q=between`, bob)).status).toBe(200);
    const post = await api(`/api/rooms/${room}/messages`, eve, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: '{"name":"eve","text":"hi"}',
    });
    expect(post.status).toBe(403);
    expect((await api(`/api/rooms/${room}/messages`, null)).status).toBe(401);
    const page = await (await api(`/api/rooms/${room}/messages`, bob)).json<MessagePage>();
    expect(page.messages.map((m) => m.seq)).toEqual([seq]);
  });

  it("cannot be claimed: a dm- room nobody opened lets nobody in, and an opened one keeps its two with nothing else stored", async () => {
    const ann = await everywhere("ann", "acct-claim-ann");
    const unopened = await exports.default.fetch(`http://chat.test/rooms/dm-0123456789abcdef0123456789abcdef?token=${ann}`, {
      headers: { Upgrade: "websocket" },
    });
    expect([unopened.status, (await unopened.json<{ code: string }>()).code]).toEqual([404, "unknown_room"]);

    const { room } = await (await dm(ann, "acct-claim-bob")).json<DirectRoom>();
    const socket = await Client.join(`/rooms/${room}?token=${ann}`);
    socket.close();
    await socket.closed();
    await evictDurableObject(env.ROOMS.getByName(room));
    const members = await runInDurableObject(
      env.ROOMS.getByName(room),
      (_, state) => state.storage.sql.exec<{ value: string }>("SELECT value FROM meta WHERE name = 'direct'").one().value,
    );
    expect(JSON.parse(members)).toEqual(["acct-claim-ann", "acct-claim-bob"]);
    await Client.join(`/rooms/${room}?token=${ann}`);
  });

  it("refuse a missing, empty, overlong or own `to`, and a body that is not JSON", async () => {
    const ann = await everywhere("ann", "acct-bad-to");
    for (const to of [undefined, "", "x".repeat(256), 7, "acct-bad-to"]) {
      const response = await dm(ann, to as string);
      expect([to, response.status, (await response.json<{ code: string }>()).code]).toEqual([to, 400, "bad_to"]);
    }
    const notJson = await api("/api/dms", ann, { method: "POST", body: "to=bob" });
    expect(notJson.status).toBe(400);
    expect((await dm(await signToken(SECRET, { room: "lobby", name: "ann", sub: "acct-bad-to", exp: hour() }), "bob")).status).toBe(403);
  });
});
