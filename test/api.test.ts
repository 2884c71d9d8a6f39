import { exports } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import type { MessagePage, RoomInfo } from "../src/protocol";
import { Room } from "../src/room/room";
import { Client, uniqueRoom } from "./support/client";

const api = (path: string, init?: RequestInit) => exports.default.fetch(`http://chat.test/api/rooms/${path}`, init);

function post(room: string, body: unknown, query = "", type = "application/json"): Promise<Response> {
  return api(`${room}/messages${query}`, {
    method: "POST",
    headers: { "Content-Type": type },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

async function page(room: string, query = ""): Promise<MessagePage> {
  const response = await api(`${room}/messages${query}`);
  expect(response.status).toBe(200);
  return response.json();
}

describe("GET /api/rooms/<room>", () => {
  it("tells who is online and the newest seq", async () => {
    const room = uniqueRoom("info");
    await Client.join(`/rooms/${room}?name=ann`);
    await post(room, { name: "bot", text: "hello" });
    const response = await api(room);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ room, online: 1, users: [{ id: "1", name: "ann" }], lastSeq: 1, objects: 1 } satisfies RoomInfo);
  });
});

describe("POST /api/rooms/<room>/messages", () => {
  it("stores and broadcasts a JSON message like a socket's, and answers 201 with its seq", async () => {
    const room = uniqueRoom("post");
    const ann = await Client.join(`/rooms/${room}?name=ann`);
    const response = await post(room, { name: " deploy-bot ", text: " shipped v2 " });
    expect(response.status).toBe(201);
    expect(await response.json()).toEqual({ seq: 1, duplicate: false });
    expect(await ann.next("message")).toMatchObject({ seq: 1, user: { id: "http", name: "deploy-bot" }, text: "shipped v2" });
  });

  it("takes plain text with the name in the query", async () => {
    const room = uniqueRoom("post-text");
    const response = await post(room, "from curl", "?name=curl", "text/plain; charset=utf-8");
    expect(response.status).toBe(201);
    expect((await page(room)).messages).toMatchObject([{ user: { name: "curl" }, text: "from curl" }]);
  });

  it("is idempotent per client and id: a retry answers 200 with the original seq", async () => {
    const room = uniqueRoom("post-retry");
    const client = "?client=0b9c2a4e-5d7f-4f7e-9a51-2f6d3c8e1b70";
    expect(await (await post(room, { name: "bot", text: "once", id: "evt-1" }, client)).json()).toEqual({ seq: 1, duplicate: false });
    const retry = await post(room, { name: "bot", text: "once", id: "evt-1" }, client);
    expect(retry.status).toBe(200);
    expect(await retry.json()).toEqual({ seq: 1, duplicate: true });
    // The same id under another client is another message.
    expect(await (await post(room, { name: "bot", text: "once", id: "evt-1" }, "?client=svc")).json()).toMatchObject({ seq: 2 });
    expect((await page(room)).lastSeq).toBe(2);
  });

  it("never deduplicates by name, which anyone can claim: an id needs ?client=", async () => {
    const room = uniqueRoom("post-by-name");
    // Once, an attacker posting first under the bot's name could make the bot's own post vanish as a "duplicate".
    const refused = await post(room, { name: "deploy-bot", text: "fake", id: "deploy-43" });
    expect(refused.status).toBe(400);
    expect(await refused.json()).toMatchObject({ code: "client_required" });
    const real = await post(room, { name: "deploy-bot", text: "deploy 43 done", id: "deploy-43" }, "?client=deploy-bot-7f3e");
    expect(real.status).toBe(201);
    expect((await page(room)).messages.map((m) => m.text)).toEqual(["deploy 43 done"]);
  });

  it("refuses a resend whose id was used for another text with 409, and keeps the first", async () => {
    const room = uniqueRoom("post-conflict");
    const client = "?client=c8a7e6f1-2b3d-4c5e-8f9a-0b1c2d3e4f50";
    expect((await post(room, { name: "bot", text: "first", id: "m-1" }, client)).status).toBe(201);
    const conflict = await post(room, { name: "bot", text: "second", id: "m-1" }, client);
    expect(conflict.status).toBe(409);
    expect(await conflict.json()).toMatchObject({ code: "id_conflict", seq: 1 });
    expect((await page(room)).messages.map((m) => m.text)).toEqual(["first"]);
  });

  it("keeps its posters apart from sockets: the same ?client= neither deduplicates with a socket nor may edit what was posted", async () => {
    const room = uniqueRoom("post-apart");
    const ann = await Client.join(`/rooms/${room}?name=ann&client=ann-1`);
    ann.send({ type: "message", text: "sent on the socket", id: "x" });
    await ann.skipTo("ack");
    const response = await post(room, { name: "bot", text: "sent on the socket", id: "x" }, "?client=ann-1");
    expect(response.status).toBe(201);
    expect(await response.json()).toEqual({ seq: 2, duplicate: false });
    ann.send({ type: "edit", seq: 2, text: "words in the bot's mouth" });
    expect(await ann.skipTo("error")).toMatchObject({ code: "forbidden" });
    expect((await page(room)).messages.map((m) => m.text)).toEqual(["sent on the socket", "sent on the socket"]);
  });
});

describe("GET /api/rooms/<room>/messages", () => {
  it("pages: the latest by default, forward from since, clamped to 500", async () => {
    const room = uniqueRoom("pages");
    for (let i = 1; i <= 8; i++) await post(room, { name: "bot", text: `m${i}` });
    expect(await page(room, "?limit=3")).toMatchObject({ oldestSeq: 1, lastSeq: 8, gap: false });
    expect((await page(room, "?limit=3")).messages.map((m) => m.seq)).toEqual([6, 7, 8]);
    expect((await page(room, "?since=2&limit=3")).messages.map((m) => m.seq)).toEqual([3, 4, 5]);
    expect((await page(room, "?since=5&limit=3")).messages.map((m) => m.seq)).toEqual([6, 7, 8]);
    expect((await page(room, "?since=8")).messages).toEqual([]);
    expect((await page(room)).messages).toHaveLength(8);

    const spy = vi.spyOn(Room.prototype, "messages");
    await page(room, "?limit=100000");
    // The number docs/protocol.md promises, not the constant: the test is of what clients were told.
    expect(spy).toHaveBeenCalledWith(null, 500, expect.anything());
  });
});

describe("a room that fails", () => {
  it("is answered with JSON { code, message } and 500, as every HTTP error is", async () => {
    vi.spyOn(Room.prototype, "info").mockImplementation(() => {
      throw new Error("the room broke");
    });
    const response = await api(uniqueRoom("broken"));
    expect(response.status).toBe(500);
    expect(response.headers.get("Content-Type")).toMatch(/^application\/json/);
    expect(await response.json()).toEqual({ code: "internal", message: "the room could not answer; try again" });
  });
});

describe("bad requests are refused before they reach a room", () => {
  it.each<[string, () => Promise<Response>, number, string]>([
    ["a bad room name", () => api("a%2Fb"), 400, "bad_room"],
    ["a bad room name on messages", () => post("-x", { name: "a", text: "b" }), 400, "bad_room"],
    ["since that is not a seq", () => api("ok/messages?since=abc"), 400, "bad_since"],
    ["a zero limit", () => api("ok/messages?limit=0"), 400, "bad_limit"],
    ["a negative limit", () => api("ok/messages?limit=-5"), 400, "bad_limit"],
    ["malformed JSON", () => post("ok", "{nope"), 400, "bad_json"],
    ["a JSON array", () => post("ok", "[1]"), 400, "bad_json"],
    ["no name", () => post("ok", { text: "hi" }), 400, "bad_name"],
    ["a name with a control character", () => post("ok", { name: "a\u0007", text: "hi" }), 400, "bad_name"],
    ["plain text without ?name=", () => post("ok", "hi", "", "text/plain"), 400, "bad_name"],
    ["no text", () => post("ok", { name: "a" }), 400, "bad_message"],
    ["text that is a number", () => post("ok", { name: "a", text: 1 }), 400, "bad_message"],
    ["empty text", () => post("ok", { name: "a", text: "  " }), 400, "empty_message"],
    ["an id that is too long", () => post("ok", { name: "a", text: "b", id: "i".repeat(65) }), 400, "bad_message"],
    ["a bad client", () => post("ok", { name: "a", text: "b" }, "?client=a%20b"), 400, "bad_client"],
    ["a form body", () => post("ok", "name=a&text=b", "", "application/x-www-form-urlencoded"), 415, "unsupported_media_type"],
    ["PUT", () => api("ok/messages", { method: "PUT" }), 405, "method_not_allowed"],
    ["POST on the room", () => api("ok", { method: "POST" }), 405, "method_not_allowed"],
    ["an unknown API path", () => api("ok/members"), 404, "not_found"],
  ])("%s", async (_, request, status, code) => {
    const reached = (["post", "messages", "info"] as const).map((method) => vi.spyOn(Room.prototype, method));
    const response = await request();
    expect(response.status).toBe(status);
    expect(await response.json()).toMatchObject({ code, message: expect.any(String) });
    for (const spy of reached) expect(spy).not.toHaveBeenCalled();
  });

  it("lists the allowed methods on a 405", async () => {
    expect((await api("ok/messages", { method: "DELETE" })).headers.get("Allow")).toBe("GET, POST");
  });
});
