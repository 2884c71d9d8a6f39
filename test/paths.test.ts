import { env, runDurableObjectAlarm } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { signToken, type Grant } from "../src/auth/grant";
import type { ClosingFrame, ServerFrame } from "../src/protocol";
import { Client, nextAddress, uniqueRoom } from "./support/client";
import { frozenClock } from "./support/clock";

// What each way into a room lets a sanctioned, foreign or greedy caller do: sockets, HTTP posts and reads, edits.

const SECRET = "runtime-test-secret"; // as set for the runtime tests in vitest.config.ts
const now = () => Math.floor(Date.now() / 1000);
const token = (grant: Partial<Grant> & { room: string }) => signToken(SECRET, { name: "ann", exp: now() + 3600, ...grant });
const moderatorToken = (room: string) => token({ room, name: "mod", role: "moderator", sub: "mod-1" });

function http(path: string, init: RequestInit & { address?: string } = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set("CF-Connecting-IP", init.address ?? nextAddress());
  return exports.default.fetch(`http://chat.test${path}`, { ...init, headers });
}

function post(room: string, body: object, options: { query?: string; address?: string; headers?: Record<string, string> } = {}): Promise<Response> {
  return http(`/api/rooms/${room}/messages${options.query ?? ""}`, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...options.headers },
    body: JSON.stringify(body),
    address: options.address,
  });
}

/** A status and body together, so that a failure shows both. */
async function answer(response: Response): Promise<{ status: number; body: Record<string, unknown> }> {
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

async function upgradeStatus(path: string, address = nextAddress()): Promise<{ status: number; body: string }> {
  const response = await exports.default.fetch(`http://chat.test${path}`, { headers: { Upgrade: "websocket", "CF-Connecting-IP": address } });
  if (response.webSocket !== null) {
    response.webSocket.accept();
    return { status: response.status, body: "" };
  }
  return { status: response.status, body: await response.text() };
}

/** A room with its moderator, who sanctions people by the id the room gave them. */
async function moderated(
  label: string,
  { private: closed = false } = {},
): Promise<{ room: string; mod: Client; sanction: (type: string, user: string) => Promise<void> }> {
  const room = uniqueRoom(closed ? `private-${label}` : label);
  const mod = await Client.join(`/rooms/${room}?token=${await moderatorToken(room)}`);
  const sanction = async (type: string, user: string) => {
    mod.send({ type, user, ...(type === "ban" || type === "mute" ? { seconds: 600 } : {}) });
    expect(await mod.skipTo("moderated")).toMatchObject({ action: type, user: { id: user } });
  };
  return { room, mod, sanction };
}

describe("a ban or a mute, over HTTP", () => {
  it("refuses a muted user's posts with 403 muted, in the socket's words and with until, in public and private rooms", async () => {
    for (const closed of [false, true]) {
      const { room, sanction } = await moderated("mute-http", { private: closed });
      const value = await token({ room, sub: "ann-1" });
      const ann = await Client.join(`/rooms/${room}?token=${value}`);
      await sanction("mute", "2");
      ann.send({ type: "message", text: "on the socket" });
      const refused = await ann.skipTo("error");
      expect(refused).toMatchObject({ code: "muted", until: expect.any(Number) });

      const posted = await answer(await post(room, { name: "ann", text: "over HTTP" }, { query: `?token=${value}` }));
      expect(posted).toEqual({ status: 403, body: { code: "muted", message: refused.message, until: refused.until } });
      // Reading is what a mute leaves.
      expect((await http(`/api/rooms/${room}/messages?token=${value}`)).status).toBe(200);
    }
  });

  it("refuses a banned user's posts and reads with 403 banned, and lets them back after an unban", async () => {
    const { room, sanction } = await moderated("ban-http", { private: true });
    const value = await token({ room, sub: "ann-1" });
    await Client.join(`/rooms/${room}?token=${value}`);
    await sanction("ban", "2");
    const banned = {
      status: 403,
      body: { code: "banned", message: expect.stringMatching(/^a moderator banned you from this room until /), until: expect.any(Number) },
    };
    expect(await answer(await post(room, { name: "ann", text: "over HTTP" }, { query: `?token=${value}` }))).toEqual(banned);
    expect(await answer(await http(`/api/rooms/${room}/messages?token=${value}`))).toEqual(banned);
    expect(await answer(await http(`/api/rooms/${room}?token=${value}`))).toEqual(banned);
    expect(await answer(await http(`/api/rooms/${room}/messages`, { headers: { Authorization: `Bearer ${value}` } }))).toEqual(banned);

    await sanction("unban", "2");
    expect((await http(`/api/rooms/${room}/messages?token=${value}`)).status).toBe(200);
    expect((await post(room, { name: "ann", text: "back" }, { query: `?token=${value}` })).status).toBe(201);
  });

  it("refuses a banned moderator's deletes over HTTP", async () => {
    const { room, sanction } = await moderated("ban-moderator");
    const other = await token({ room, name: "eve", role: "moderator", sub: "eve-1" });
    const eve = await Client.join(`/rooms/${room}?token=${other}`);
    eve.send("to be deleted");
    const { seq } = await eve.skipTo("message");
    await sanction("ban", "2");
    const response = await http(`/api/rooms/${room}/moderation`, {
      method: "POST",
      headers: { Authorization: `Bearer ${other}`, "Content-Type": "application/json" },
      body: JSON.stringify({ type: "delete", seq }),
    });
    expect(await answer(response)).toMatchObject({ status: 403, body: { code: "banned" } });
  });
});

describe("who a ban holds", () => {
  it("holds a banned account that comes back without its token, by its client id and by its address", async () => {
    const { room, sanction } = await moderated("token-dropped");
    const address = nextAddress();
    await Client.join(`/rooms/${room}?client=ann-laptop&token=${await token({ room, sub: "ann-1" })}`, address);
    await sanction("ban", "2");
    expect(await upgradeStatus(`/rooms/${room}?client=ann-laptop&name=ann`)).toMatchObject({ status: 403, body: expect.stringContaining("banned") });
    expect(await upgradeStatus(`/rooms/${room}?name=ann`, address)).toMatchObject({ status: 403, body: expect.stringContaining("banned") });
    expect(await answer(await post(room, { name: "ann", text: "no token" }, { query: "?client=ann-laptop" }))).toMatchObject({
      status: 403,
      body: { code: "banned" },
    });
    // Someone else, on another network and device, is not held.
    expect((await upgradeStatus(`/rooms/${room}?client=bob-phone&name=bob`)).status).toBe(101);
  });

  it("closes every socket of the banned account, on any device, each after a closing frame", async () => {
    const { room, sanction } = await moderated("every-device");
    const value = await token({ room, sub: "ann-1" });
    const laptop = await Client.join(`/rooms/${room}?client=laptop&token=${value}`);
    const phone = await Client.join(`/rooms/${room}?client=phone&token=${value}`);
    await sanction("ban", "2");
    for (const socket of [laptop, phone]) {
      expect(await socket.skipTo("closing")).toMatchObject({
        type: "closing",
        code: 4003,
        reason: "banned",
        until: expect.any(Number),
      } satisfies Partial<ClosingFrame>);
      expect((await socket.closed()).code).toBe(4003);
    }
  });

  it("holds a tokenless person's network only against tokenless joins: other accounts and the moderator stay", async () => {
    const { room, mod, sanction } = await moderated("one-network");
    const office = nextAddress();
    await Client.join(`/rooms/${room}?name=anon`, office);
    const carl = await Client.join(`/rooms/${room}?token=${await token({ room, name: "carl", sub: "carl-1" })}`, office);
    await sanction("mute", "2");
    await sanction("ban", "2");

    // A stranger without a token on the same network is held: nothing else tells them apart.
    expect((await upgradeStatus(`/rooms/${room}?name=stranger`, office)).status).toBe(403);
    // An account of its own is judged by that account, on any path.
    carl.send("still talking");
    expect(await carl.skipTo("message")).toMatchObject({ text: "still talking" });
    const value = await token({ room, name: "dora", sub: "dora-1" });
    expect((await upgradeStatus(`/rooms/${room}?token=${value}`, office)).status).toBe(101);
    expect((await post(room, { name: "dora", text: "from the office" }, { query: `?token=${value}`, address: office })).status).toBe(201);
    // So is the moderator who imposed it, wherever they are.
    const again = await Client.join(`/rooms/${room}?token=${await moderatorToken(room)}`, office);
    again.send("the moderator, from the office");
    expect(await again.skipTo("message")).toMatchObject({ text: "the moderator, from the office" });
    expect(mod.closeEvent).toBeNull();
  });
});

describe("a state-changing request from a browser", () => {
  it("is refused 403 bad_origin from another site, and accepted from the Worker's own origin or with no Origin", async () => {
    const room = uniqueRoom("origin");
    const from = (origin?: string) =>
      post(room, { name: "bot", text: `from ${origin ?? "curl"}` }, { headers: origin === undefined ? {} : { Origin: origin } });
    expect(await answer(await from("https://evil.example"))).toMatchObject({ status: 403, body: { code: "bad_origin" } });
    const plain = await http(`/api/rooms/${room}/messages?name=bot`, {
      method: "POST",
      headers: { "Content-Type": "text/plain", Origin: "https://evil.example" },
      body: "hi",
    });
    expect(plain.status).toBe(403);
    const created = await http("/api/rooms", { method: "POST", headers: { Origin: "https://evil.example" } });
    expect(created.status).toBe(403);
    expect((await from("http://chat.test")).status).toBe(201);
    expect((await from()).status).toBe(201);
    expect(((await answer(await http(`/api/rooms/${room}/messages`))).body.messages as unknown[]).length).toBe(2);
  });
});

describe("HTTP reads", () => {
  it("share a per-address budget, where a big page costs more, and are refused 429 with Retry-After past it", async () => {
    const room = uniqueRoom("reads");
    const address = nextAddress();
    const clock = frozenClock();
    // RATE_LIMIT_PER_10S is 20: twenty small reads, or two of 500 entries.
    for (let i = 0; i < 20; i++) expect((await http(`/api/rooms/${room}/messages?limit=50`, { address })).status).toBe(200);
    const refused = await http(`/api/rooms/${room}/messages?limit=50`, { address });
    expect(await answer(refused.clone())).toMatchObject({ status: 429, body: { code: "rate_limited", retryAfterMs: 1000 } });
    expect(refused.headers.get("Retry-After")).toBe("1");
    expect((await http(`/api/rooms/${room}`, { address })).status).toBe(429);
    // Another address has its own budget.
    expect((await http(`/api/rooms/${room}/messages?limit=500`)).status).toBe(200);

    // Refused reads cost too: a full bucket again takes long enough for the debt.
    clock.advance(20_000);
    expect((await http(`/api/rooms/${room}/messages?limit=500`, { address })).status).toBe(200);
    expect((await http(`/api/rooms/${room}/messages?limit=500`, { address })).status).toBe(200);
    expect((await http(`/api/rooms/${room}/messages?limit=1`, { address })).status).toBe(429);
  });
});

describe("a token", () => {
  it("is taken from a subprotocol beside edge-chat, which the upgrade answers with; never echoed", async () => {
    const room = uniqueRoom("private-subprotocol");
    const value = await token({ room, name: "ann" });
    const upgrade = (protocols: string) =>
      exports.default.fetch(`http://chat.test/rooms/${room}`, {
        headers: { Upgrade: "websocket", "CF-Connecting-IP": nextAddress(), "Sec-WebSocket-Protocol": protocols },
      });
    const accepted = await upgrade(`edge-chat, token.${value}`);
    expect(accepted.status).toBe(101);
    expect(accepted.headers.get("Sec-WebSocket-Protocol")).toBe("edge-chat");
    const ann = await Client.accept(accepted);
    expect(await ann.next("welcome")).toMatchObject({ you: { name: "ann", verified: true } });

    const alone = await upgrade(`token.${value}`);
    expect(await answer(alone)).toMatchObject({ status: 400, body: { code: "bad_token" } });
    const forged = await upgrade("edge-chat, token.not-a-jwt");
    expect(await answer(forged)).toMatchObject({ status: 403, body: { code: "bad_token" } });
  });

  it("is taken from Authorization on HTTP reads and posts", async () => {
    const room = uniqueRoom("private-bearer");
    const value = await token({ room, name: "bot" });
    const bearer = { Authorization: `Bearer ${value}` };
    expect((await http(`/api/rooms/${room}/messages`)).status).toBe(401);
    expect((await http(`/api/rooms/${room}/messages`, { headers: bearer })).status).toBe(200);
    expect((await post(room, { name: "bot", text: "hi" }, { headers: bearer })).status).toBe(201);
    expect((await http(`/api/rooms/${room}/messages`, { headers: { Authorization: "Basic abc" } })).status).toBe(401);
  });
});

describe("a close the room decides", () => {
  it("is preceded by a closing frame that says why: in JSON, and in words in the text format", async () => {
    const { room, sanction } = await moderated("closing");
    const ann = await Client.join(`/rooms/${room}?name=ann`);
    const bob = await Client.connect(`/rooms/${room}?name=bob&format=text`);
    await sanction("kick", "2");
    expect(await ann.skipTo("closing")).toEqual({
      type: "closing",
      code: 4001,
      reason: "kicked",
      message: "a moderator removed you from the room",
    } satisfies ServerFrame);
    expect((await ann.closed()).code).toBe(4001);
    await sanction("kick", "3");
    await bob.closed();
    expect(bob.unread().at(-1)).toBe("Disconnected: a moderator removed you from the room.");
  });

  it("is preceded by a closing frame for a flood, and for a token that expired", async () => {
    const room = uniqueRoom("closing-more");
    const ann = await Client.join(`/rooms/${room}?name=ann`);
    const clock = frozenClock();
    for (let i = 0; i < 100; i++) ann.send({ type: "who" });
    expect(await ann.skipTo("closing")).toMatchObject({ code: 1008, reason: "flood" });
    expect((await ann.closed()).code).toBe(1008);

    // Past the expiry and any clock skew allowed for, not yet past the heartbeat timeout.
    const bob = await Client.join(`/rooms/${room}?token=${await token({ room, name: "bob", exp: now() + 10 })}`);
    clock.advance(45_000);
    await runDurableObjectAlarm(env.ROOMS.getByName(room));
    expect(await bob.skipTo("closing")).toMatchObject({ code: 4002, reason: "expired", message: "your token expired" });
    expect((await bob.closed()).code).toBe(4002);
  });
});
