import { env, evictDurableObject } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { signToken } from "../src/auth/grant";
import { Client, nextAddress, uniqueRoom } from "./support/client";
import { frozenClock } from "./support/clock";

const SECRET = "runtime-test-secret"; // as set for the runtime tests in vitest.config.ts
const now = () => Math.floor(Date.now() / 1000);
const moderatorToken = (room: string) => signToken(SECRET, { room, name: "mod", role: "moderator", sub: "mod-1", exp: now() + 3600 });

function upgrade(path: string, address = nextAddress()): Promise<Response> {
  return exports.default.fetch(`http://chat.test${path}`, { headers: { Upgrade: "websocket", "CF-Connecting-IP": address } });
}

/**
 * The status an upgrade gets. A refusal's body is read, since an unread
 * one keeps its request open in the room, and evicting the room waits for it.
 */
async function statusOf(path: string, address?: string): Promise<number> {
  const response = await upgrade(path, address);
  if (response.webSocket === null) await response.text();
  else response.webSocket.accept();
  return response.status;
}

/** A room with a moderator in it, and whoever else a test adds. */
async function moderated(label: string): Promise<{ room: string; mod: Client }> {
  const room = uniqueRoom(label);
  const mod = await Client.join(`/rooms/${room}?token=${await moderatorToken(room)}`);
  return { room, mod };
}

describe("moderation", () => {
  it("is refused to members with forbidden, and changes nothing", async () => {
    const { room, mod } = await moderated("forbidden");
    const ann = await Client.join(`/rooms/${room}?token=${await signToken(SECRET, { room, name: "ann", exp: now() + 3600 })}`);
    const bob = await Client.join(`/rooms/${room}?name=bob`);
    for (const frame of [
      { type: "kick", user: "1" },
      { type: "ban", user: "1", seconds: 60 },
      { type: "unban", user: "1" },
      { type: "mute", user: "1", seconds: 60 },
      { type: "unmute", user: "1" },
    ]) {
      for (const member of [ann, bob]) {
        member.send(frame);
        expect(await member.skipTo("error")).toMatchObject({ code: "forbidden" });
      }
    }
    mod.send("still here");
    expect(await mod.skipTo("message")).toMatchObject({ text: "still here" });
    expect(mod.closeEvent).toBeNull();
  });

  it("kicks: the socket closes with 4001 and everyone hears it, in words in the text format", async () => {
    const { room, mod } = await moderated("kick");
    expect(mod.frames.map((f) => JSON.parse(f) as { type: string; you?: object }).find((f) => f.type === "welcome")?.you).toEqual({
      id: "1",
      name: "mod",
      verified: true,
      account: "mod-1",
      moderator: true,
    });
    const tex = await Client.join(`/rooms/${room}?name=tex&format=text`);
    const bob = await Client.join(`/rooms/${room}?name=bob`);
    mod.send({ type: "kick", user: "3" });
    expect(await mod.skipTo("moderated")).toEqual({ type: "moderated", action: "kick", user: { id: "3", name: "bob" } });
    expect((await bob.closed()).code).toBe(4001);
    expect(await mod.skipTo("presence")).toMatchObject({ left: [{ user: { name: "bob" }, reason: "kicked" }] });
    await expect.poll(() => tex.frames.some((f) => f.endsWith("bob was kicked."))).toBe(true);
    // A kicked person may come back at once.
    expect(await statusOf(`/rooms/${room}?name=bob`)).toBe(101);
  });

  it("bans by token: the same person is refused with 403 banned on any device, until it ends or is lifted", async () => {
    const { room, mod } = await moderated("ban-sub");
    const eve = (client: string) =>
      signToken(SECRET, { room, name: "eve", sub: "eve-7", exp: now() + 3600 }).then((t) => `/rooms/${room}?client=${client}&token=${t}`);
    const first = await Client.join(await eve("laptop"));
    mod.send({ type: "ban", user: "2", seconds: 600 });
    const done = await mod.skipTo("moderated");
    expect(done).toMatchObject({ action: "ban", user: { id: "2", name: "eve", verified: true, account: "eve-7" } });
    expect((await first.closed()).code).toBe(4003);
    expect(await mod.skipTo("presence")).toMatchObject({ left: [{ reason: "banned" }] });

    const refused = await upgrade(await eve("phone"));
    expect(refused.status).toBe(403);
    expect(await refused.json()).toMatchObject({ code: "banned" });
    // Another person from the same address is not held by a ban on a token.
    expect(await statusOf(`/rooms/${room}?name=someone`)).toBe(101);

    mod.send({ type: "unban", user: "2" });
    expect(await mod.skipTo("moderated")).toEqual({ type: "moderated", action: "unban", user: { id: "2", name: "eve" } });
    expect(await statusOf(await eve("phone"))).toBe(101);
  });

  it("bans without a token by client id and by address, and the ban ends by itself", async () => {
    const { room, mod } = await moderated("ban-client");
    const address = "203.0.113.40";
    const zed = await Client.join(`/rooms/${room}?name=zed&client=zed-1`, address);
    mod.send({ type: "ban", user: "2", seconds: 60 });
    await mod.skipTo("moderated");
    await zed.closed();
    expect(await statusOf(`/rooms/${room}?name=zed&client=zed-2`, address)).toBe(403);
    expect(await statusOf(`/rooms/${room}?name=zed&client=zed-1`, "203.0.113.41")).toBe(403);
    expect(await statusOf(`/rooms/${room}?name=zed&client=zed-3`, "203.0.113.42")).toBe(101);
    const answer = await exports.default.fetch(`http://chat.test/rooms/${room}?client=zed-1`, {
      headers: { Accept: "application/json", "CF-Connecting-IP": "203.0.113.43" },
    });
    expect(await answer.json()).toMatchObject({ code: "banned" });

    const clock = frozenClock();
    clock.advance(61_000);
    expect(await statusOf(`/rooms/${room}?name=zed&client=zed-1`, address)).toBe(101);
  });

  it("keeps a ban through hibernation and a reset of the room", async () => {
    const { room, mod } = await moderated("ban-kept");
    const sub = "kept-9";
    const token = await signToken(SECRET, { room, name: "kim", sub, exp: now() + 3600 });
    await Client.join(`/rooms/${room}?token=${token}`);
    mod.send({ type: "ban", user: "2", seconds: 600 });
    await mod.skipTo("moderated");
    const stub = env.ROOMS.getByName(room);
    await evictDurableObject(stub, { webSockets: "hibernate" });
    expect(await statusOf(`/rooms/${room}?token=${token}`)).toBe(403);
    await evictDurableObject(stub, { webSockets: "close" });
    expect((await mod.closed()).code).toBe(1006);
    // With nobody left the room still keeps its storage, for the ban.
    expect(await statusOf(`/rooms/${room}?token=${token}`)).toBe(403);
  });

  it("mutes: the person reads but cannot send, until unmuted", async () => {
    const { room, mod } = await moderated("mute");
    const bob = await Client.join(`/rooms/${room}?name=bob&client=bob-1`);
    mod.send({ type: "mute", user: "2", seconds: 600 });
    expect(await mod.skipTo("moderated")).toMatchObject({ action: "mute", user: { id: "2" }, until: expect.any(Number) });
    bob.send("can I talk?");
    expect(await bob.skipTo("error")).toMatchObject({ code: "muted" });
    mod.send("you can read this");
    expect(await bob.skipTo("message")).toMatchObject({ text: "you can read this" });
    // Reconnecting does not lift it.
    bob.close();
    await bob.closed();
    const again = await Client.join(`/rooms/${room}?name=bob&client=bob-1`);
    again.send("and now?");
    expect(await again.skipTo("error")).toMatchObject({ code: "muted" });
    mod.send({ type: "unmute", user: "2" });
    await mod.skipTo("moderated");
    again.send("thanks");
    expect(await again.skipTo("message")).toMatchObject({ text: "thanks" });
  });

  it("answers bad moderation frames in words and changes nothing", async () => {
    const { room, mod } = await moderated("bad-frames");
    await Client.join(`/rooms/${room}?name=bob`);
    const cases: Array<[object, string]> = [
      [{ type: "kick" }, "bad_message"],
      [{ type: "kick", user: 2 }, "bad_message"],
      [{ type: "kick", user: "-1" }, "bad_message"],
      [{ type: "ban", user: "2" }, "bad_message"],
      [{ type: "ban", user: "2", seconds: 1e12 }, "bad_message"],
      [{ type: "ban", user: "2", seconds: -5 }, "bad_message"],
      [{ type: "mute", user: "2", seconds: 1.5 }, "bad_message"],
      [{ type: "mute", user: "2", seconds: "60" }, "bad_message"],
      [{ type: "kick", user: "99" }, "unknown_user"],
      [{ type: "unban", user: "2" }, "unknown_user"],
      [{ type: "unmute", user: "99" }, "unknown_user"],
    ];
    for (const [frame, code] of cases) {
      mod.send(frame);
      expect(await mod.skipTo("error"), JSON.stringify(frame)).toMatchObject({ code });
    }
    mod.send({ type: "who" });
    expect((await mod.skipTo("users")).online).toBe(2);
  });
});

describe("moderation over HTTP", () => {
  const moderate = (room: string, body: object, authorization?: string) =>
    exports.default.fetch(`http://chat.test/api/rooms/${room}/moderation`, {
      method: "POST",
      headers: { "Content-Type": "application/json", ...(authorization !== undefined && { Authorization: authorization }) },
      body: JSON.stringify(body),
    });

  it("takes a moderator's bearer token and does what a socket's frame does", async () => {
    const room = uniqueRoom("http-moderation");
    const ann = await Client.join(`/rooms/${room}?name=ann`);
    const bob = await Client.join(`/rooms/${room}?name=bob`);
    const answer = await moderate(room, { type: "kick", user: "2" }, `Bearer ${await moderatorToken(room)}`);
    expect(answer.status).toBe(200);
    expect(await answer.json()).toEqual({ type: "moderated", action: "kick", user: { id: "2", name: "bob" } });
    expect((await bob.closed()).code).toBe(4001);
    // Bob's join and his leave may come in one presence frame or two, as the batch window falls.
    expect((await ann.presence({ joined: 1, left: 1 })).left).toMatchObject([{ user: { name: "bob" }, reason: "kicked" }]);

    const missing = await moderate(room, { type: "kick", user: "9" }, `Bearer ${await moderatorToken(room)}`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ code: "unknown_user" });
  });

  it.each([
    ["no token", undefined, 401, "token_required"],
    ["a member's token", "member", 403, "forbidden"],
    ["another room's moderator", "elsewhere", 403, "bad_token"],
  ])("refuses %s, and nothing happens", async (_, who, status, code) => {
    const room = uniqueRoom("http-refused");
    const bob = await Client.join(`/rooms/${room}?name=bob`);
    const token =
      who === "member" ? await signToken(SECRET, { room, name: "ann", exp: now() + 60 }) : who === "elsewhere" ? await moderatorToken("elsewhere") : undefined;
    const response = await moderate(room, { type: "kick", user: "1" }, token === undefined ? undefined : `Bearer ${token}`);
    expect(response.status).toBe(status);
    expect(await response.json()).toMatchObject({ code });
    bob.send("still in");
    expect(await bob.skipTo("message")).toMatchObject({ text: "still in" });
  });

  it("refuses a body that is not a moderation", async () => {
    const room = uniqueRoom("http-bad-body");
    const bearer = `Bearer ${await moderatorToken(room)}`;
    expect(await (await moderate(room, { type: "kick", user: 3 }, bearer)).json()).toMatchObject({ code: "bad_message" });
    expect(await (await moderate(room, { type: "dance", user: "3" }, bearer)).json()).toMatchObject({ code: "unknown_type" });
  });
});
