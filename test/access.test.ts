import { exports } from "cloudflare:workers";
import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import { isAllowedOrigin } from "../src/worker/origin";
import { Room } from "../src/room/room";
import { signToken } from "../src/auth/grant";
import { Client, uniqueRoom, caller, read } from "./support/client";

const SECRET = "runtime-test-secret"; // as set for the runtime tests in vitest.config.ts

function upgrade(path: string, headers: Record<string, string> = {}): Promise<Response> {
  return exports.default.fetch(`http://chat.test${path}`, { headers: { Upgrade: "websocket", ...headers } });
}

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
    expect(created).toEqual({
      room: created.room,
      url: `http://chat.test/rooms/${created.room}`,
      wsUrl: `ws://chat.test/rooms/${created.room}`,
      // A moderator token for the creator (identity.test.ts), since these tests have a ROOM_SECRET.
      ownerToken: expect.any(String),
    });
    const again = (await (await exports.default.fetch("http://chat.test/api/rooms", { method: "POST" })).json()) as { room: string };
    expect(again.room).not.toBe(created.room);
    const ann = await Client.connect(`/rooms/${created.room}?name=ann`);
    expect(await ann.next("welcome")).toMatchObject({ room: created.room });
  });
});

describe("room capacity", () => {
  it("refuses one connection more than MAX_CONNECTIONS_PER_ROOM (8 in these tests) with 503 room_full, and changes nothing", async () => {
    const room = uniqueRoom("full");
    const clients: Client[] = [];
    for (let i = 0; i < 8; i++) clients.push(await Client.join(`/rooms/${room}`));
    const response = await upgrade(`/rooms/${room}`);
    expect(response.status).toBe(503);
    expect(await response.json()).toMatchObject({ code: "room_full" });
    const info = await runInDurableObject(env.ROOMS.getByName(room), (instance: Room) => read(instance.info(caller())));
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
    const expired = await signToken(SECRET, { room: "private-ask", name: "ann", exp: Math.floor(Date.now() / 1000) - 3600 });
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
    expect(await runInDurableObject(env.ROOMS.getByName(room), (instance: Room) => read(instance.info(caller())).online)).toBe(8);
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
