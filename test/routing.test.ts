import { exports } from "cloudflare:workers";
import { env, listDurableObjectIds } from "cloudflare:test";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, type MockInstance, vi } from "vitest";
import { Room } from "../src/room/room";
import { Client } from "./support/client";

const upgrade = { headers: { Upgrade: "websocket" } };

async function errorOf(response: Response): Promise<{ status: number; code: string; message: string }> {
  expect(response.headers.get("Content-Type")).toMatch(/^application\/json/);
  const body = (await response.json()) as { code: string; message: string };
  expect(body.message).toEqual(expect.any(String));
  return { status: response.status, code: body.code, message: body.message };
}

describe("rejected requests never reach a room", () => {
  // Everything in this block is refused by the Worker; the check at the end
  // proves that no room object was created or called for any of it. The
  // runtime is shared with the files that ran before this one (isolate: false
  // in vitest.config.ts), so their rooms may be there already.
  const roomIds = async () => (await listDurableObjectIds(env.ROOMS)).map(String).sort();
  let before: string[];
  beforeAll(async () => {
    before = await roomIds();
  });
  afterAll(async () => {
    expect(await roomIds()).toEqual(before);
  });
  // A spy for each test: restoreMocks ends every spy before the next test.
  let roomFetch: MockInstance<Room["fetch"]>;
  beforeEach(() => {
    roomFetch = vi.spyOn(Room.prototype, "fetch");
  });
  afterEach(() => {
    expect(roomFetch, "calls to a room").not.toHaveBeenCalled();
  });

  it.each([
    ["empty", "/rooms/"],
    ["an encoded slash", "/rooms/a%2Fb"],
    ["a leading dash", "/rooms/-lobby"],
    ["a leading dot", "/rooms/.hidden"],
    ["65 characters", `/rooms/${"a".repeat(65)}`],
    ["a space", "/rooms/my%20room"],
    ["non-ASCII", "/rooms/caf%C3%A9"],
    ["broken percent-encoding", "/rooms/%zz"],
  ])("a room name with %s is 400 bad_room", async (_, path) => {
    const response = await exports.default.fetch(`http://chat.test${path}`, upgrade);
    expect(await errorOf(response)).toMatchObject({ status: 400, code: "bad_room" });
  });

  it.each([
    ["empty", ""],
    ["only spaces", "%20%20"],
    ["33 characters", "x".repeat(33)],
    ["a control character", "bob%07"],
    ["a newline", "bob%0Aalice"],
    ["a bidi override", "bob%E2%80%AEevil"],
  ])("a display name that is %s is 400 bad_name", async (_, name) => {
    const response = await exports.default.fetch(`http://chat.test/rooms/lobby?name=${name}`, upgrade);
    expect(await errorOf(response)).toMatchObject({ status: 400, code: "bad_name" });
  });

  it("an unknown format is 400 bad_format", async () => {
    const response = await exports.default.fetch("http://chat.test/rooms/lobby?format=xml", upgrade);
    expect(await errorOf(response)).toMatchObject({ status: 400, code: "bad_format" });
  });

  it.each(["/rooms", "/room/lobby", "/rooms/lobby/extra", "/favicon.ico"])("%s is 404 not_found", async (path) => {
    const response = await exports.default.fetch(`http://chat.test${path}`);
    expect(await errorOf(response)).toMatchObject({ status: 404, code: "not_found" });
  });

  it.each(["POST", "PUT", "DELETE", "HEAD"])("%s on a room is 405 with Allow: GET", async (method) => {
    const response = await exports.default.fetch("http://chat.test/rooms/lobby", { method });
    expect(response.status).toBe(405);
    expect(response.headers.get("Allow")).toBe("GET");
    if (method !== "HEAD") expect((await errorOf(response)).code).toBe("method_not_allowed");
  });

  it("a room URL without an upgrade is 426 with a hint showing how to connect", async () => {
    const response = await exports.default.fetch("http://chat.test/rooms/lobby?name=ann");
    expect(response.status).toBe(426);
    expect(response.headers.get("Content-Type")).toMatch(/^text\/plain/);
    expect(await response.text()).toContain("npx wscat -c ws://chat.test/rooms/lobby?name=ann");
  });
});

describe("accepted room URLs", () => {
  it("are case-sensitive: Lobby and lobby are different rooms", async () => {
    const upper = await Client.connect("/rooms/Lobby");
    const lower = await Client.connect("/rooms/lobby");
    expect((await upper.next("welcome")).room).toBe("Lobby");
    expect((await lower.next("welcome")).users).toHaveLength(1);
  });

  it("accept every character the rule allows, at the longest length", async () => {
    const room = `A0_.-${"z".repeat(59)}`;
    const client = await Client.connect(`/rooms/${room}`);
    expect((await client.next("welcome")).room).toBe(room);
  });

  it("take a trimmed display name, counted in characters rather than bytes", async () => {
    const name = "ünïcödé ".repeat(4).slice(0, 32);
    const client = await Client.connect(`/rooms/names?name=${encodeURIComponent(`  ${name}  `)}`);
    expect((await client.next("welcome")).you.name).toBe(name.trim());
  });
});

describe("pages for browsers", () => {
  it("serve the chat page at a room URL to a browser, with a strict Content-Security-Policy", async () => {
    const response = await exports.default.fetch("http://chat.test/rooms/lobby", { headers: { Accept: "text/html,*/*" } });
    expect(response.status).toBe(200);
    expect(response.headers.get("Content-Type")).toMatch(/^text\/html/);
    expect(response.headers.get("Content-Security-Policy")).toContain("script-src 'self'");
    expect(response.headers.get("Content-Security-Policy")).toContain("default-src 'none'");
    const html = await response.text();
    expect(html).toContain('<script type="module" src="/app/chat-page.js"></script>');
    expect(html).not.toMatch(/<script>|\son[a-z]+=/);
  });

  it("serve the lobby at /", async () => {
    const response = await exports.default.fetch("http://chat.test/");
    expect(response.status).toBe(200);
    expect(response.headers.get("Content-Security-Policy")).toContain("frame-ancestors 'none'");
    expect(await response.text()).toContain("Create a private room");
  });

  it("keep the hint for tools that do not ask for HTML, and the upgrade for WebSocket clients", async () => {
    expect((await exports.default.fetch("http://chat.test/rooms/lobby", { headers: { Accept: "*/*" } })).status).toBe(426);
    const client = await Client.connect("/rooms/pages-upgrade");
    expect(await client.next("welcome")).toMatchObject({ room: "pages-upgrade" });
  });
});
