import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { signToken } from "../src/auth/grant";
import { Client, nextAddress, uniqueRoom } from "./support/client";

// Bans, mutes and their lifting through `POST /api/rooms/<room>/moderation`,
// as docs/protocol.md documents them: the same as a moderator's frame.

const SECRET = "runtime-test-secret"; // as set for the runtime tests in vitest.config.ts

async function moderate(room: string, body: object): Promise<Response> {
  const token = await signToken(SECRET, { room, name: "mod", role: "moderator", sub: "mod-1", exp: Math.floor(Date.now() / 1000) + 3600 });
  return exports.default.fetch(`http://chat.test/api/rooms/${room}/moderation`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  });
}

/** The status and body of an upgrade the room is expected to refuse, or 101 (its socket accepted, so nothing hangs). */
async function upgrade(path: string, address = nextAddress()): Promise<{ status: number; body: unknown }> {
  const response = await exports.default.fetch(`http://chat.test${path}`, { headers: { Upgrade: "websocket", "CF-Connecting-IP": address } });
  if (response.webSocket !== null) {
    response.webSocket.accept();
    return { status: response.status, body: null };
  }
  return { status: response.status, body: await response.json() };
}

describe("moderation over HTTP", () => {
  it("bans: the socket closes with 4003, the others hear why, the person is refused 403 banned until an unban lets them back", async () => {
    const room = uniqueRoom("http-ban");
    const ann = await Client.join(`/rooms/${room}?name=ann`);
    const eve = await Client.join(`/rooms/${room}?name=eve&client=eve-1`);
    await ann.presence({ joined: 1 });

    const banned = await moderate(room, { type: "ban", user: "2", seconds: 600 });
    expect(banned.status).toBe(200);
    expect(await banned.json()).toEqual({ type: "moderated", action: "ban", user: { id: "2", name: "eve" }, until: expect.any(Number) });
    expect((await eve.closed()).code).toBe(4003);
    expect(await ann.presence({ left: 1 })).toMatchObject({ left: [{ user: { id: "2", name: "eve" }, reason: "banned" }], online: 1 });
    // From another address too: the ban is on the person, by their client id.
    expect(await upgrade(`/rooms/${room}?name=eve&client=eve-1`)).toMatchObject({ status: 403, body: { code: "banned" } });

    const unbanned = await moderate(room, { type: "unban", user: "2" });
    expect(unbanned.status).toBe(200);
    expect(await unbanned.json()).toEqual({ type: "moderated", action: "unban", user: { id: "2", name: "eve" } });
    expect((await upgrade(`/rooms/${room}?name=eve&client=eve-1`)).status).toBe(101);
  });

  it("mutes: the person's messages are refused muted while they still read, until an unmute", async () => {
    const room = uniqueRoom("http-mute");
    const ann = await Client.join(`/rooms/${room}?name=ann`);
    const bob = await Client.join(`/rooms/${room}?name=bob`);
    await ann.presence({ joined: 1 });

    const muted = await moderate(room, { type: "mute", user: "2", seconds: 600 });
    expect(muted.status).toBe(200);
    expect(await muted.json()).toEqual({ type: "moderated", action: "mute", user: { id: "2", name: "bob" }, until: expect.any(Number) });
    bob.send("can I talk?");
    expect(await bob.skipTo("error")).toMatchObject({ code: "muted" });
    ann.send("you can read this");
    expect(await bob.skipTo("message")).toMatchObject({ text: "you can read this" });
    expect(bob.closeEvent).toBeNull();

    const unmuted = await moderate(room, { type: "unmute", user: "2" });
    expect(unmuted.status).toBe(200);
    expect(await unmuted.json()).toEqual({ type: "moderated", action: "unmute", user: { id: "2", name: "bob" } });
    bob.send("thanks");
    expect(await bob.skipTo("message")).toMatchObject({ text: "thanks" });
    // Only bob's words after the unmute reached the others.
    const heard: string[] = [];
    while (heard.at(-1) !== "thanks") heard.push((await ann.skipTo("message")).text);
    expect(heard).toEqual(["you can read this", "thanks"]);
  });

  it.each([
    ["a ban of someone not in the room", { type: "ban", user: "99", seconds: 60 }],
    ["a mute of someone not in the room", { type: "mute", user: "99", seconds: 60 }],
    ["an unban of someone not banned", { type: "unban", user: "2" }],
    ["an unmute of someone not muted", { type: "unmute", user: "2" }],
  ])("answers %s with 404 unknown_user, and nothing happens", async (_, body) => {
    const room = uniqueRoom("http-unknown");
    const ann = await Client.join(`/rooms/${room}?name=ann`);
    const bob = await Client.join(`/rooms/${room}?name=bob`);
    const answer = await moderate(room, body);
    expect(answer.status).toBe(404);
    expect(await answer.json()).toMatchObject({ code: "unknown_user" });
    bob.send("still here");
    expect(await ann.skipTo("message")).toMatchObject({ text: "still here", user: { name: "bob" } });
    expect(bob.closeEvent).toBeNull();
  });
});
