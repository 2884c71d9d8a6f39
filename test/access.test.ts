import { exports } from "cloudflare:workers";
import { env, runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { isAllowedOrigin } from "../src/origin";
import { Room } from "../src/room";
import { signToken, verifyToken } from "../src/token";
import { Client, uniqueRoom } from "./client";

const SECRET = "runtime-test-secret"; // as set for the runtime tests in vitest.config.ts
const hour = () => Math.floor(Date.now() / 1000) + 3600;

function upgrade(path: string, headers: Record<string, string> = {}): Promise<Response> {
  return exports.default.fetch(`http://chat.test${path}`, { headers: { Upgrade: "websocket", ...headers } });
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe("the origin policy", () => {
  it.each([
    ["another site", "https://evil.example"],
    ["a look-alike suffix", "http://chat.test.evil.example"],
    ["a look-alike prefix", "http://evil-chat.test"],
    ["another scheme", "https://chat.test"],
    ["another port", "http://chat.test:8080"],
    ["an opaque origin", "null"],
  ])("refuses a browser upgrade from %s with 403 before any room is touched", async (_, origin) => {
    const fetch = vi.spyOn(Room.prototype, "fetch");
    const response = await upgrade(`/rooms/${uniqueRoom("origin")}`, { Origin: origin });
    expect(response.status).toBe(403);
    expect(await response.json()).toMatchObject({ code: "bad_origin" });
    expect(fetch).not.toHaveBeenCalled();
  });

  it("lets in the Worker's own origin, and clients that send none", async () => {
    expect((await upgrade(`/rooms/${uniqueRoom("origin")}`, { Origin: "http://chat.test" })).status).toBe(101);
    expect((await upgrade(`/rooms/${uniqueRoom("origin")}`)).status).toBe(101);
  });

  it("reads ALLOWED_ORIGINS as a comma-separated list of whole origins", () => {
    const self = new URL("https://chat.example.com/rooms/lobby");
    const list = " https://app.example.com , http://localhost:5173/ ";
    expect(isAllowedOrigin("https://app.example.com", list, self)).toBe(true);
    expect(isAllowedOrigin("http://localhost:5173", list, self)).toBe(true);
    expect(isAllowedOrigin("https://APP.example.com", list, self)).toBe(true);
    expect(isAllowedOrigin("https://chat.example.com", list, self)).toBe(false);
    expect(isAllowedOrigin("https://app.example.com.evil.net", list, self)).toBe(false);
    expect(isAllowedOrigin("http://localhost:5174", list, self)).toBe(false);
    expect(isAllowedOrigin("https://chat.example.com", "", self)).toBe(true);
    expect(isAllowedOrigin("https://chat.example.com:443", undefined, self)).toBe(true);
  });
});

describe("private rooms", () => {
  it("are created with an unguessable name and links to use it", async () => {
    const response = await exports.default.fetch("http://chat.test/api/rooms", { method: "POST" });
    expect(response.status).toBe(201);
    const created = (await response.json()) as { room: string; url: string; wsUrl: string };
    expect(created.room).toMatch(/^[0-9a-f]{32}$/);
    expect(created).toEqual({ room: created.room, url: `http://chat.test/rooms/${created.room}`, wsUrl: `ws://chat.test/rooms/${created.room}` });
    const again = (await (await exports.default.fetch("http://chat.test/api/rooms", { method: "POST" })).json()) as { room: string };
    expect(again.room).not.toBe(created.room);
    const ann = await Client.connect(`/rooms/${created.room}?name=ann`);
    expect(await ann.next("welcome")).toMatchObject({ room: created.room });
  });
});

describe("signed tokens for private- rooms", () => {
  it("let in the holder under the name the token grants", async () => {
    const room = uniqueRoom("private-club");
    const token = await signToken(SECRET, { room, name: "ann", exp: hour() });
    const ann = await Client.connect(`/rooms/${room}?token=${token}`);
    expect((await ann.next("welcome")).you.name).toBe("ann");
    const same = await Client.connect(`/rooms/${room}?name=ann&token=${token}`);
    expect((await same.next("welcome")).you.name).toBe("ann");
  });

  it.each<[string, () => Promise<string | null>, number, string]>([
    ["no token", async () => null, 401, "token_required"],
    ["a token signed with another secret", () => signToken("guess", { room: "private-x", name: "ann", exp: hour() }), 403, "bad_token"],
    ["a token for another room", () => signToken(SECRET, { room: "private-y", name: "ann", exp: hour() }), 403, "bad_token"],
    ["an expired token", () => signToken(SECRET, { room: "private-x", name: "ann", exp: Math.floor(Date.now() / 1000) - 1 }), 403, "token_expired"],
    ["garbage", async () => "not.a.token", 403, "bad_token"],
    ["a tampered payload", async () => tamper(await signToken(SECRET, { room: "private-x", name: "ann", exp: hour() })), 403, "bad_token"],
  ])("refuse %s", async (_, token, status, code) => {
    const fetch = vi.spyOn(Room.prototype, "fetch");
    const value = await token();
    const response = await upgrade(`/rooms/private-x${value === null ? "" : `?token=${value}`}`);
    expect(response.status).toBe(status);
    expect(await response.json()).toMatchObject({ code });
    expect(fetch).not.toHaveBeenCalled();
  });

  it("refuse a token used under another name, and renames", async () => {
    const token = await signToken(SECRET, { room: "private-names", name: "ann", exp: hour() });
    const response = await upgrade(`/rooms/private-names?name=mallory&token=${token}`);
    expect(response.status).toBe(403);
    expect(await response.json()).toMatchObject({ code: "bad_token" });

    const ann = await Client.join(`/rooms/private-names?token=${token}`);
    ann.send({ type: "rename", name: "mallory" });
    expect(await ann.next("error")).toMatchObject({ code: "rename_not_allowed" });
  });

  it("guard the HTTP API too, and bind a post to the token's name", async () => {
    const token = await signToken(SECRET, { room: "private-api", name: "bot", exp: hour() });
    expect((await exports.default.fetch("http://chat.test/api/rooms/private-api")).status).toBe(401);
    expect((await exports.default.fetch(`http://chat.test/api/rooms/private-api/messages?token=${token}`)).status).toBe(200);
    const post = (name: string) =>
      exports.default.fetch(`http://chat.test/api/rooms/private-api/messages?token=${token}`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ name, text: "hi" }),
      });
    expect((await post("mallory")).status).toBe(403);
    expect((await post("bot")).status).toBe(201);
  });

  it("verify in constant time through Web Crypto, and name the failure", async () => {
    const token = await signToken(SECRET, { room: "private-v", name: "ann", exp: 2_000_000_000 });
    expect(await verifyToken(SECRET, token, "private-v", 1_900_000_000_000)).toEqual({ ok: true, name: "ann" });
    expect(await verifyToken(SECRET, token, "private-v", 2_000_000_000_000)).toMatchObject({ ok: false, code: "token_expired" });
    expect(await verifyToken(SECRET, `${token}x`, "private-v", 0)).toMatchObject({ ok: false, code: "bad_token" });
  });
});

/** Flips the room in a token's payload while keeping its signature. */
function tamper(token: string): string {
  const [payload, signature] = token.split(".");
  const json = atob(payload!.replace(/-/g, "+").replace(/_/g, "/")).replace("private-x", "private-z");
  return `${btoa(json).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "")}.${signature}`;
}

describe("room capacity", () => {
  it("refuses one connection more than MAX_CONNECTIONS_PER_ROOM (8 in these tests) with 503 room_full, and changes nothing", async () => {
    const room = uniqueRoom("full");
    const clients: Client[] = [];
    for (let i = 0; i < 8; i++) clients.push(await Client.join(`/rooms/${room}`));
    const response = await upgrade(`/rooms/${room}`);
    expect(response.status).toBe(503);
    expect(await response.json()).toMatchObject({ code: "room_full" });
    const info = await runInDurableObject(env.ROOMS.getByName(room), (instance: Room) => instance.info());
    expect(info.online).toBe(8);
    // The first one saw the other seven join, and nothing for the refused attempt.
    expect((await clients[0]!.presence({ joined: 7 })).joined).toHaveLength(7);
    clients[0]!.send({ type: "who" });
    expect(await clients[0]!.next("users")).toMatchObject({ online: 8 });
    clients[7]!.close();
    await clients[7]!.closed();
    const ninth = await Client.connect(`/rooms/${room}`);
    // The refused attempt took no connection number.
    expect((await ninth.next("welcome")).you).toEqual({ id: "9", name: "User #9" });
  });
});

describe("asking why an upgrade would be refused", () => {
  // A browser sees only a failed socket; it asks with Accept: application/json and hears what the upgrade heard.
  const ask = (path: string, address = "192.0.2.50") =>
    exports.default.fetch(`http://chat.test${path}`, { headers: { Accept: "application/json", "CF-Connecting-IP": address } });

  it("says 426 upgrade_required when nothing stands in the way", async () => {
    const response = await ask(`/rooms/${uniqueRoom("ask")}?name=ann`);
    expect(response.status).toBe(426);
    expect(await response.json()).toMatchObject({ code: "upgrade_required" });
  });

  it("gives the Worker's refusals: a bad name, a missing or expired token", async () => {
    expect(await (await ask("/rooms/lobby?name=%E2%80%AE")).json()).toMatchObject({ code: "bad_name" });
    const missing = await ask("/rooms/private-ask");
    expect(missing.status).toBe(401);
    expect(await missing.json()).toMatchObject({ code: "token_required" });
    const expired = await signToken(SECRET, { room: "private-ask", name: "ann", exp: Math.floor(Date.now() / 1000) - 1 });
    expect(await (await ask(`/rooms/private-ask?token=${expired}`)).json()).toMatchObject({ code: "token_expired" });
  });

  it("gives the room's refusals, too many connections from one address or a full room, and changes nothing", async () => {
    const room = uniqueRoom("ask-full");
    const address = "192.0.2.51";
    for (let i = 0; i < 3; i++) await Client.join(`/rooms/${room}`, address);
    const response = await ask(`/rooms/${room}`, address);
    expect(response.status).toBe(429);
    expect(await response.json()).toMatchObject({ code: "too_many_connections", retryAfterMs: expect.any(Number) });
    for (let i = 0; i < 5; i++) await Client.join(`/rooms/${room}`);
    expect(await (await ask(`/rooms/${room}`, "192.0.2.52")).json()).toMatchObject({ code: "room_full" });
    expect(await runInDurableObject(env.ROOMS.getByName(room), (instance: Room) => instance.info().online)).toBe(8);
  });

  it("costs no storage in a room nobody is in", async () => {
    const room = uniqueRoom("ask-empty");
    expect((await ask(`/rooms/${room}`)).status).toBe(426);
    const tables = await runInDurableObject(env.ROOMS.getByName(room), (_, state) =>
      state.storage.sql.exec("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '_cf_%'").toArray(),
    );
    expect(tables).toEqual([]);
  });
});

describe("HTTP bodies", () => {
  const post = (body: BodyInit, headers: Record<string, string>) =>
    exports.default.fetch(`http://chat.test/api/rooms/${uniqueRoom("body")}/messages?name=bot`, { method: "POST", headers, body });

  it("over MAX_FRAME_BYTES are refused with 413, declared or not", async () => {
    const big = "x".repeat(16 * 1024 + 1);
    const declared = await post(big, { "Content-Type": "text/plain" });
    expect(declared.status).toBe(413);
    expect(await declared.json()).toMatchObject({ code: "too_large" });
    const stream = new ReadableStream({
      start(controller) {
        for (let i = 0; i < 20; i++) controller.enqueue(new TextEncoder().encode("y".repeat(1024)));
        controller.close();
      },
    });
    const streamed = await post(stream, { "Content-Type": "text/plain" });
    expect(streamed.status).toBe(413);
  });

  it("are rate-limited per address and room, with Retry-After", async () => {
    vi.spyOn(Date, "now").mockReturnValue(Date.now());
    const room = uniqueRoom("post-rate");
    const send = (ip: string) =>
      exports.default.fetch(`http://chat.test/api/rooms/${room}/messages?name=bot`, {
        method: "POST",
        headers: { "Content-Type": "text/plain", "CF-Connecting-IP": ip },
        body: "hi",
      });
    for (let i = 0; i < 20; i++) expect((await send("198.51.100.7")).status).toBe(201);
    const limited = await send("198.51.100.7");
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get("Retry-After"))).toBeGreaterThanOrEqual(1);
    expect(await limited.json()).toMatchObject({ code: "rate_limited", retryAfterMs: expect.any(Number) });
    expect((await send("203.0.113.9")).status).toBe(201);
  });
});

describe("markup in names and texts", () => {
  it("is delivered as data, and served only as JSON that browsers may not sniff", async () => {
    const room = uniqueRoom("xss");
    const markup = "<img src=x onerror=alert(1)>";
    const ann = await Client.join(`/rooms/${room}?name=${encodeURIComponent(markup)}`);
    ann.send(`<script>alert(1)</script> ${markup}`);
    const frame = await ann.next("message");
    expect(frame.user.name).toBe(markup);
    expect(frame.text).toBe(`<script>alert(1)</script> ${markup}`);

    const response = await exports.default.fetch(`http://chat.test/api/rooms/${room}/messages`);
    expect(response.headers.get("Content-Type")).toBe("application/json");
    expect(response.headers.get("X-Content-Type-Options")).toBe("nosniff");
    expect(await response.text()).toContain("<script>alert(1)</script>");
    const error = await exports.default.fetch(`http://chat.test/${encodeURIComponent(markup)}`);
    expect(error.headers.get("Content-Type")).toBe("application/json");
    expect(error.headers.get("X-Content-Type-Options")).toBe("nosniff");
  });
});
