import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import {
  ChatClient,
  ChatError,
  type ChangeFrame,
  type ChatClientOptions,
  type ChatEvents,
  type ChatMessage,
  type DirectRoom,
  type MessageFrame,
  type MyRooms,
  type ReactionsFrame,
  type SearchFrame,
  type ThreadFrame,
} from "../../src/client/chat-client";
import { fullBucket, take } from "../../src/protocol";
import { closing } from "../../src/protocol";
import { FakeSocket } from "../support/fake-socket";

// Time here is Vitest's fake clock: every wait is exact, however slow the machine.

const URL_ = "ws://room.test/rooms/fake";
const clients: ChatClient[] = [];
/** What the client asked over HTTP: the URL and its headers. */
let asked: Array<{ url: string; headers: Record<string, string> }> = [];
/** How the fake server answers those: by default, that nothing stands in the way. */
let answer: () => Response = () => new Response("upgrade required", { status: 426 });

beforeEach(() => {
  vi.useFakeTimers();
  FakeSocket.made = [];
  asked = [];
  answer = () => new Response("upgrade required", { status: 426 });
  vi.stubGlobal("WebSocket", FakeSocket);
  vi.stubGlobal("fetch", async (url: URL, init: RequestInit) => {
    asked.push({ url: String(url), headers: init.headers as Record<string, string> });
    return answer();
  });
});

afterEach(() => {
  for (const client of clients.splice(0)) client.close();
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

/** A client, and the socket it opened. */
async function start(options: Partial<ChatClientOptions> = {}): Promise<{ chat: ChatClient; ws: FakeSocket }> {
  const chat = new ChatClient({ url: URL_, name: "ann", ...options });
  clients.push(chat);
  await vi.advanceTimersByTimeAsync(0);
  return { chat, ws: FakeSocket.last };
}

/** The socket the client opens next, waiting no longer than `withinMs` of fake time for it. */
async function nextSocket(after: FakeSocket, withinMs: number): Promise<FakeSocket> {
  for (let waited = 0; FakeSocket.last === after; waited += 10) {
    if (waited > withinMs) throw new Error(`no new socket within ${withinMs} ms; ${FakeSocket.made.length} made`);
    await vi.advanceTimersByTimeAsync(10);
  }
  return FakeSocket.last;
}

/** Every state the client goes through, with its details. */
function states(chat: ChatClient): Array<ChatEvents["state"]> {
  const seen: Array<ChatEvents["state"]> = [];
  chat.on("state", (s) => seen.push(s));
  return seen;
}

/**
 * Plays the room on a socket: each frame takes a token of the room's own
 * bucket (src/protocol/limits.ts), a refused one is answered as the room answers it,
 * and messages are stored in the order they are read and acknowledged.
 */
function room(ws: FakeSocket, framesPer10s: number): { stored: string[]; refusedAt: number[] } {
  const bucket = fullBucket(framesPer10s, Date.now());
  const stored: string[] = [];
  const refusedAt: number[] = [];
  ws.onFrame = (frame) => {
    const verdict = take(bucket, framesPer10s, Date.now());
    if (!verdict.ok) {
      refusedAt.push(Date.now());
      queueMicrotask(() => ws.receive({ type: "error", code: "rate_limited", message: "too many frames; slow down", retryAfterMs: verdict.retryAfterMs }));
      return;
    }
    if (frame.type !== "message") return;
    stored.push(frame.text);
    const seq = stored.length;
    queueMicrotask(() => ws.receive({ type: "ack", id: frame.id!, seq }));
  };
  return { stored, refusedAt };
}

const texts = (n: number) => Array.from({ length: n }, (_, i) => `m${i}`);

describe("answers carry what they answer", () => {
  it("pairs answers with requests by id, in whatever order they come", async () => {
    const { chat, ws } = await start();
    ws.open();
    const who = chat.who();
    const rename = chat.rename("annie");
    const [whoFrame, renameFrame] = ws.frames();
    expect(whoFrame).toMatchObject({ type: "who", id: expect.any(String) });
    expect(renameFrame).toMatchObject({ type: "rename", name: "annie", id: expect.any(String) });
    ws.receive({ type: "renamed", id: renameFrame!.id, user: { id: "1", name: "annie" }, from: "ann" });
    ws.receive({ type: "users", id: whoFrame!.id, users: [{ id: "1", name: "annie" }], online: 1, more: false });
    expect(await rename).toEqual({ id: "1", name: "annie" });
    expect(await who).toMatchObject({ type: "users", online: 1 });
  });

  it("resolves a renewal with its own answer and the message after it with its ack, however late the renewal is answered", async () => {
    const { chat, ws } = await start();
    ws.open();
    const renewed = chat.renew("fresh-token");
    const sent = chat.send("after the renewal");
    const [token, message] = ws.frames();
    expect([token?.type, message?.type]).toEqual(["token", "message"]);
    // A room that answers a renewal once it has checked the token, after what it read next.
    ws.receive({ type: "ack", id: message!.id!, seq: 7 });
    ws.receive({ type: "renewed", id: token!.id, exp: 1_900_000_000 });
    expect(await sent).toBe(7);
    expect(await renewed).toBe(1_900_000_000);
  });

  it("pairs an answer without an id, a frame refused unread, with the oldest request on the wire", async () => {
    const { chat, ws } = await start();
    ws.open();
    const who = chat.who();
    const sent = chat.send("hello");
    ws.receive({ type: "error", code: "rate_limited", message: "too many frames; slow down", retryAfterMs: 1000 });
    const [, message] = ws.frames();
    ws.receive({ type: "ack", id: message!.id!, seq: 1 });
    expect(await sent).toBe(1);
    // The refused `who` was not read, so it goes again once the room said it may.
    await vi.advanceTimersByTimeAsync(1000);
    const again = ws.frames().filter((f) => f.type === "who");
    expect(again).toHaveLength(2);
    expect(again[1]!.id).toBe(again[0]!.id);
    ws.receive({ type: "users", id: again[1]!.id, users: [], online: 1, more: false });
    expect(await who).toMatchObject({ type: "users" });
  });
});

describe("pacing", () => {
  it("sends 60 messages at a limit of 20 per 10 s without one refused, stored in the order sent", async () => {
    const { chat, ws } = await start();
    const { stored, refusedAt } = room(ws, 20);
    ws.open({ framesPer10s: 20 });
    const sends = texts(60).map((text) => chat.send(text));
    let settled = 0;
    for (const send of sends) void send.then(() => settled++);
    // 19 at once (one token kept for jitter), then one every 500 ms: 41 more take 20.5 s.
    await vi.advanceTimersByTimeAsync(21_000);
    expect(refusedAt).toEqual([]);
    expect(stored).toEqual(texts(60));
    expect(settled).toBe(60);
    expect(await Promise.all(sends)).toEqual(texts(60).map((_, i) => i + 1));
  });

  it("sends 30 messages queued while offline once back, paced, all stored in order", async () => {
    const { chat, ws } = await start();
    ws.open({ framesPer10s: 20 });
    ws.end(1006);
    await vi.advanceTimersByTimeAsync(0);
    expect(chat.state).toBe("waiting");
    const sends = texts(30).map((text) => chat.send(text));
    expect(chat.pending).toHaveLength(30);
    const back = await nextSocket(ws, 1000);
    const { stored, refusedAt } = room(back, 20);
    back.open({ framesPer10s: 20 });
    await vi.advanceTimersByTimeAsync(10_000);
    expect(refusedAt).toEqual([]);
    expect(stored).toEqual(texts(30));
    expect(await Promise.all(sends)).toHaveLength(30);
    expect(chat.pending).toEqual([]);
  });

  it("keeps a message the room made wait, sends it again under its id after the wait, and keeps the later ones behind it", async () => {
    const { chat, ws } = await start();
    ws.open();
    const stored: string[] = [];
    let refuse = true;
    ws.onFrame = (frame) => {
      if (frame.type !== "message") return;
      if (refuse && frame.text === "first") {
        refuse = false;
        queueMicrotask(() => ws.receive({ type: "error", id: frame.id, code: "auth_unavailable", message: "cannot check tokens now", retryAfterMs: 3000 }));
        return;
      }
      stored.push(frame.text);
      queueMicrotask(() => ws.receive({ type: "ack", id: frame.id!, seq: stored.length }));
    };
    const sends = ["first", "second", "third"].map((text) => chat.send(text));
    await vi.advanceTimersByTimeAsync(2_900);
    expect(stored).toEqual([]);
    expect(chat.pending.map((p) => p.text)).toEqual(["first", "second", "third"]);
    await vi.advanceTimersByTimeAsync(200);
    expect(await Promise.all(sends)).toEqual([1, 2, 3]);
    expect(stored).toEqual(["first", "second", "third"]);
    const ids = ws
      .frames()
      .filter((f) => f.type === "message" && f.text === "first")
      .map((f) => f.id);
    expect(ids).toHaveLength(2);
    expect(ids[1]).toBe(ids[0]);
  });

  it("refuses by itself a frame larger than the room reads, instead of sending it", async () => {
    const { chat, ws } = await start();
    ws.open({ frameBytes: 100 });
    await expect(chat.send("x".repeat(200))).rejects.toMatchObject({ code: "too_large" });
    expect(ws.frames()).toEqual([]);
  });
});

describe("closing frames", () => {
  it("stops at once on a kick, rejects what was pending with the room's words, and closes the socket itself", async () => {
    const { chat, ws } = await start();
    ws.open();
    const refusals: Array<ChatEvents["refused"]> = [];
    chat.on("refused", (r) => refusals.push(r));
    const pending = chat.send("never answered");
    ws.receive(closing("kicked", "a moderator kicked you"));
    expect(chat.state).toBe("closed");
    await expect(pending).rejects.toEqual(new ChatError("kicked", "a moderator kicked you"));
    expect(refusals).toEqual([{ refusal: expect.objectContaining({ code: "kicked", message: "a moderator kicked you" }), retryInMs: null }]);
    expect(ws.closedWith).toMatchObject({ code: 1000 });
    await vi.advanceTimersByTimeAsync(60_000);
    expect(FakeSocket.made).toHaveLength(1);
  });

  it("says until when a ban holds, and stops for a flood", async () => {
    const banned = await start();
    banned.ws.open();
    const refusals: Array<ChatEvents["refused"]> = [];
    banned.chat.on("refused", (r) => refusals.push(r));
    banned.ws.receive(closing("banned", "a moderator banned you", 1_900_000_000_000));
    expect(refusals).toEqual([{ refusal: expect.objectContaining({ code: "banned", until: 1_900_000_000_000 }), retryInMs: null }]);

    const flooder = await start();
    flooder.ws.open();
    flooder.ws.receive(closing("flood", "too many frames"));
    expect(flooder.chat.state).toBe("closed");
    await expect(flooder.chat.send("x")).rejects.toMatchObject({ code: "flooding" });
  });

  it("reconnects at once after a heartbeat timeout or a try-again, without waiting for the close", async () => {
    for (const reason of ["timeout", "tryAgain"] as const) {
      const { chat, ws } = await start();
      const seen = states(chat);
      ws.open();
      const frame = closing(reason, `closed for ${reason}`);
      ws.receive(frame);
      expect(seen.at(-1)).toMatchObject({ state: "waiting", reason: `closed for ${reason}` });
      expect(ws.closedWith).toMatchObject({ code: 1000 });
      // The first retry after a welcome waits at most half a second.
      const back = await nextSocket(ws, 500);
      back.open();
      expect(chat.state).toBe("open");
      // The close event of the socket left behind changes nothing.
      ws.end(frame.code);
      await vi.advanceTimersByTimeAsync(0);
      expect(chat.state).toBe("open");
    }
  });

  it("comes back with a fresh token after an expiry when the token is a function, and stops when it is a string", async () => {
    let issued = 0;
    const renewing = await start({ name: undefined, token: () => `token-${++issued}` });
    renewing.ws.open();
    renewing.ws.receive(closing("expired", "your token expired"));
    const back = await nextSocket(renewing.ws, 500);
    expect(back.protocols).toEqual(["edge-chat", "token.token-2"]);

    const fixed = await start({ name: undefined, token: "only-token" });
    fixed.ws.open();
    fixed.ws.receive(closing("expired", "your token expired"));
    expect(fixed.chat.state).toBe("closed");
    await expect(fixed.chat.send("x")).rejects.toMatchObject({ code: "token_expired" });
  });
});

describe("tokens", () => {
  it("offers the token as a subprotocol, never in the URL, and asks why it was refused with a bearer header", async () => {
    answer = () => Response.json({ code: "bad_token", message: "this token is not for this room" }, { status: 403 });
    const { chat, ws } = await start({ name: undefined, token: "header.payload.signature" });
    expect(ws.protocols).toEqual(["edge-chat", "token.header.payload.signature"]);
    expect(new URL(ws.url).searchParams.has("token")).toBe(false);
    ws.end(1006);
    await vi.advanceTimersByTimeAsync(0);
    expect(asked).toEqual([
      {
        url: expect.stringMatching(/^http:\/\/room\.test\/rooms\/fake\?/),
        headers: expect.objectContaining({ Authorization: "Bearer header.payload.signature" }),
      },
    ]);
    expect(asked[0]!.url).not.toContain("token");
    expect(chat.state).toBe("closed");
  });

  it("keeps retrying while the identity provider is unavailable, as long as Retry-After says", async () => {
    answer = () =>
      Response.json({ code: "auth_unavailable", message: "cannot fetch the identity provider's keys" }, { status: 503, headers: { "Retry-After": "7" } });
    const { chat, ws } = await start({ name: undefined, token: "t" });
    const refusals: Array<ChatEvents["refused"]> = [];
    chat.on("refused", (r) => refusals.push(r));
    let socket = ws;
    for (let attempt = 0; attempt < 4; attempt++) {
      socket.end(1006);
      await vi.advanceTimersByTimeAsync(0);
      expect(chat.state).toBe("waiting");
      expect(refusals.at(-1)).toMatchObject({ refusal: { code: "auth_unavailable", retryAfterMs: 7000 }, retryInMs: expect.any(Number) });
      expect(refusals.at(-1)!.retryInMs).toBeGreaterThanOrEqual(7000);
      await vi.advanceTimersByTimeAsync(6_900);
      expect(FakeSocket.last).toBe(socket);
      socket = await nextSocket(socket, refusals.at(-1)!.retryInMs! - 6_900);
    }
    answer = () => new Response("upgrade required", { status: 426 });
    socket.open();
    expect(chat.state).toBe("open");
  });

  it("rejects a renewal the room cannot check now with auth_unavailable and when to retry", async () => {
    const { chat, ws } = await start();
    ws.open();
    const renewal = chat.renew("fresh");
    const [frame] = ws.frames();
    ws.receive({ type: "error", id: frame!.id, code: "auth_unavailable", message: "cannot check tokens now", retryAfterMs: 5000 });
    await expect(renewal).rejects.toEqual(new ChatError("auth_unavailable", "cannot check tokens now", 5000));
    expect(chat.state).toBe("open");
  });
});

describe("liveness", () => {
  it("replaces a socket whose pong is late, and keeps one whose pong comes in time", async () => {
    const { chat, ws } = await start({ pingEveryMs: 1000, pongWithinMs: 500 });
    ws.open();
    await vi.advanceTimersByTimeAsync(1000);
    expect(ws.sent.at(-1)).toBe("ping");
    ws.receive("pong");
    await vi.advanceTimersByTimeAsync(600);
    expect(FakeSocket.made).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(400);
    expect(ws.sent.filter((s) => s === "ping")).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(499);
    expect(ws.closedWith).toBeNull();
    await vi.advanceTimersByTimeAsync(2);
    expect(ws.closedWith).not.toBeNull();
    expect(chat.state).toBe("waiting");
    const back = await nextSocket(ws, 500);
    back.open();
    expect(chat.state).toBe("open");
  });

  it("wake() reconnects at once instead of waiting out a long wait, and checks an open socket at once", async () => {
    answer = () => Response.json({ code: "too_many_connections", message: "too many connections", retryAfterMs: 60_000 }, { status: 429 });
    const { chat, ws } = await start({ pongWithinMs: 500 });
    ws.end(1006);
    await vi.advanceTimersByTimeAsync(0);
    expect(chat.state).toBe("waiting");
    chat.wake();
    await vi.advanceTimersByTimeAsync(0);
    const back = FakeSocket.last;
    expect(back).not.toBe(ws);
    back.open();
    chat.wake();
    expect(back.sent).toEqual(["ping"]);
    await vi.advanceTimersByTimeAsync(501);
    expect(back.closedWith).not.toBeNull();
    expect(chat.state).toBe("waiting");
  });

  it("wakes itself when a browser comes back online or its tab becomes visible, until closed", async () => {
    const window = new EventTarget();
    const document = Object.assign(new EventTarget(), { visibilityState: "hidden" });
    vi.stubGlobal("window", window);
    vi.stubGlobal("document", document);
    answer = () => Response.json({ code: "room_full", message: "the room is full", retryAfterMs: 60_000 }, { status: 503 });
    const { chat, ws } = await start();
    ws.end(1006);
    await vi.advanceTimersByTimeAsync(0);
    window.dispatchEvent(new Event("online"));
    await vi.advanceTimersByTimeAsync(0);
    const online = FakeSocket.last;
    expect(online).not.toBe(ws);

    online.end(1006);
    await vi.advanceTimersByTimeAsync(0);
    document.dispatchEvent(new Event("visibilitychange"));
    await vi.advanceTimersByTimeAsync(0);
    expect(FakeSocket.last, "a hidden tab waits").toBe(online);
    document.visibilityState = "visible";
    document.dispatchEvent(new Event("visibilitychange"));
    await vi.advanceTimersByTimeAsync(0);
    const visible = FakeSocket.last;
    expect(visible).not.toBe(online);

    // A closed client lets go of the page's events, so that the page does not keep it.
    const removed = [vi.spyOn(window, "removeEventListener"), vi.spyOn(document, "removeEventListener")];
    chat.close();
    expect(removed.map((spy) => spy.mock.calls.map(([type]) => type))).toEqual([["online"], ["visibilitychange"]]);
    window.dispatchEvent(new Event("online"));
    document.dispatchEvent(new Event("visibilitychange"));
    await vi.advanceTimersByTimeAsync(0);
    expect(FakeSocket.last).toBe(visible);
  });
});

/**
 * Plays a room that stores every message and reaction as it reads it and
 * acknowledges it at once, and records each frame the client sent, with
 * when: messages, reactions and typing alike.
 */
function storing(ws: FakeSocket): Array<{ frame: ReturnType<FakeSocket["frames"]>[number]; at: number }> {
  const log: Array<{ frame: ReturnType<FakeSocket["frames"]>[number]; at: number }> = [];
  let seq = 0;
  ws.onFrame = (frame) => {
    log.push({ frame, at: Date.now() });
    if (frame.type === "message" || frame.type === "react" || frame.type === "unreact") {
      const stored = ++seq;
      queueMicrotask(() => ws.receive({ type: "ack", id: frame.id!, seq: stored }));
    }
  };
  return log;
}

const typingFrames = (ws: FakeSocket) => ws.frames().filter((f) => f.type === "typing");
const ann = (id: string) => ({ id, name: "ann" });
const bob = { id: "90", name: "bob" };
const message = (seq: number, extra: Partial<MessageFrame> = {}): MessageFrame => ({ type: "message", seq, user: bob, text: `m${seq}`, at: 0, ...extra });
const reactions = (seq: number, change: number, emoji = "👍"): ReactionsFrame => ({
  type: "reactions",
  seq,
  change,
  reactions: [{ emoji, count: 1, users: [bob.id] }],
  user: bob,
  emoji,
});

describe("typing", () => {
  it("announces typing at most once per half of the room's typingSeconds while it lasts, and a stop once after it", async () => {
    const { chat, ws } = await start();
    ws.open({ typingSeconds: 8 });
    chat.typing(false);
    expect(typingFrames(ws), "nothing to stop before anything was announced").toEqual([]);
    chat.typing();
    await vi.advanceTimersByTimeAsync(3_999);
    chat.typing();
    expect(typingFrames(ws)).toEqual([{ type: "typing", id: expect.any(String) }]);
    await vi.advanceTimersByTimeAsync(1);
    chat.typing(true);
    expect(typingFrames(ws)).toHaveLength(2);
    chat.typing(false);
    chat.typing(false);
    expect(typingFrames(ws)).toEqual([
      { type: "typing", id: expect.any(String) },
      { type: "typing", id: expect.any(String) },
      { type: "typing", stop: true, id: expect.any(String) },
    ]);
    // Typing again after a stop is news at once.
    chat.typing();
    expect(typingFrames(ws).at(-1)).toEqual({ type: "typing", id: expect.any(String) });
  });

  it("starts over after a message, which stopped the typing in the room: no stop, and the next keystroke is news", async () => {
    const { chat, ws } = await start();
    storing(ws);
    ws.open();
    chat.typing();
    expect(await chat.send("done typing")).toBe(1);
    chat.typing(false);
    expect(ws.frames().map((f) => f.type)).toEqual(["typing", "message"]);
    chat.typing();
    expect(ws.frames().map((f) => f.type)).toEqual(["typing", "message", "typing"]);
    await chat.reply(1, "and a reply");
    chat.typing();
    expect(ws.frames().map((f) => f.type)).toEqual(["typing", "message", "typing", "message", "typing"]);
  });

  it("paces typing to its own budget, which messages neither take from nor wait for", async () => {
    const { chat, ws } = await start();
    const log = storing(ws);
    const t0 = Date.now();
    const sentAt = () => log.map((l) => [l.frame.type === "typing" && l.frame.stop === true ? "stop" : l.frame.type, l.at - t0]);
    // Two of each per 10 s, with one token kept in reserve: one at once, the next 5 s later.
    ws.open({ typingPer10s: 2, framesPer10s: 2 });
    chat.typing();
    chat.typing(false);
    await vi.advanceTimersByTimeAsync(4_999);
    expect(sentAt()).toEqual([["typing", 0]]);
    await vi.advanceTimersByTimeAsync(1);
    expect(sentAt()).toEqual([
      ["typing", 0],
      ["stop", 5_000],
    ]);

    // Typing waits for its budget; a message does not wait with it (and, since it stops the typing in the room, the typing is moot).
    chat.typing();
    expect(await chat.send("one")).toBe(1);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(sentAt().slice(2)).toEqual([["message", 5_000]]);

    // Both budgets full again: the second of two messages waits, and typing does not wait with it.
    const sends = [chat.send("two"), chat.send("three")];
    await vi.advanceTimersByTimeAsync(0);
    chat.typing();
    expect(sentAt().slice(3)).toEqual([
      ["message", 15_000],
      ["typing", 15_000],
    ]);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(await Promise.all(sends)).toEqual([2, 3]);
    expect(sentAt().at(-1)).toEqual(["message", 20_000]);
  });

  it("sends nothing while disconnected, and neither typing nor a stop waiting for its budget after a reconnect", async () => {
    const { chat, ws } = await start();
    ws.open({ typingPer10s: 2 });
    chat.typing();
    chat.typing(false);
    // The stop waits for a token when the socket drops.
    ws.end(1006);
    await vi.advanceTimersByTimeAsync(0);
    chat.typing();
    const back = await nextSocket(ws, 1000);
    back.open({ typingPer10s: 2 });
    await vi.advanceTimersByTimeAsync(10_000);
    expect(typingFrames(ws)).toEqual([{ type: "typing", id: expect.any(String) }]);
    expect(typingFrames(back)).toEqual([]);
    // This socket's room has heard nothing of it: the next keystroke is news, and a stop follows it within the budget.
    chat.typing();
    chat.typing(false);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(typingFrames(back).map((f) => f.stop ?? false)).toEqual([false, true]);
  });

  it("puts `type` first in typing and reaction frames, where the room looks for their budgets", async () => {
    const { chat, ws } = await start();
    ws.open();
    chat.typing();
    chat.typing(false);
    const reacted = chat.react(1, "👍");
    const unreacted = chat.unreact(1, "👍");
    expect(ws.sent.map((raw) => raw.slice(0, raw.indexOf(","))).slice(0, 3)).toEqual(['{"type":"typing"', '{"type":"typing"', '{"type":"react"']);
    ws.receive({ type: "ack", id: ws.frames()[2]!.id!, seq: 2 });
    await vi.advanceTimersByTimeAsync(0);
    expect(ws.sent[3]).toMatch(/^\{"type":"unreact",/);
    ws.receive({ type: "ack", id: ws.frames()[3]!.id!, seq: 3 });
    expect(await Promise.all([reacted, unreacted])).toEqual([2, 3]);
  });

  it("takes the room's refusal of a typing frame, which names it, for the answer to nothing else", async () => {
    const { chat, ws } = await start();
    ws.open();
    const who = chat.who();
    chat.typing();
    const [ask, typing] = ws.frames();
    ws.receive({ type: "error", id: typing!.id, code: "rate_limited", message: "too much typing", retryAfterMs: 5_000 });
    // Messages do not wait for typing's budget.
    const sent = chat.send("at once");
    const message = ws.frames().at(-1);
    expect(message).toMatchObject({ type: "message", text: "at once" });
    ws.receive({ type: "users", id: ask!.id, users: [], online: 1, more: false });
    expect(await who).toMatchObject({ type: "users" });
    ws.receive({ type: "ack", id: message!.id!, seq: 1 });
    expect(await sent).toBe(1);
  });

  it("tells who else is typing, without this client under any id it had, and that nobody is once the connection drops", async () => {
    const { chat, ws } = await start();
    const seen: Array<ChatEvents["typing"]> = [];
    chat.on("typing", (t) => seen.push(t));
    ws.open();
    ws.receive({ type: "typing", users: [ann("1"), bob], count: 2, started: [bob] });
    ws.receive({ type: "typing", users: [ann("1")], count: 1, started: [] });
    ws.end(1006);
    await vi.advanceTimersByTimeAsync(0);
    expect(seen).toEqual([
      { users: [bob], count: 1 },
      { users: [], count: 0 },
    ]);
    const back = await nextSocket(ws, 1000);
    back.open();
    // The room may still show the connection before, until it notices that it is gone.
    back.receive({ type: "typing", users: [ann("1"), bob, ann("2")], count: 7, started: [bob] });
    back.end(1006);
    await vi.advanceTimersByTimeAsync(0);
    expect(seen.slice(2)).toEqual([
      { users: [bob], count: 5 },
      { users: [], count: 0 },
    ]);
  });
});

describe("reactions", () => {
  it("resolves react and unreact with the seq of their ack, and rejects them with the room's error", async () => {
    const { chat, ws } = await start();
    ws.open();
    const reacted = chat.react(4, "👍");
    const [react] = ws.frames();
    expect(react).toEqual({ type: "react", seq: 4, emoji: "👍", id: expect.any(String) });
    ws.receive({ type: "ack", id: react!.id!, seq: 9 });
    expect(await reacted).toBe(9);
    const unreacted = chat.unreact(4, ":tada:");
    const unreact = ws.frames()[1];
    expect(unreact).toEqual({ type: "unreact", seq: 4, emoji: ":tada:", id: expect.any(String) });
    ws.receive({ type: "ack", id: unreact!.id!, seq: 10 });
    expect(await unreacted).toBe(10);
    const refused = chat.react(99, "👍");
    ws.receive({ type: "error", id: ws.frames()[2]!.id, code: "unknown_message", message: "no message 99" });
    await expect(refused).rejects.toEqual(new ChatError("unknown_message", "no message 99"));
  });

  it("sends a reaction again under the same id after a drop, and resolves it once", async () => {
    const { chat, ws } = await start();
    ws.open();
    let resolved = 0;
    const reacted = chat.react(3, "🎉").then((seq) => {
      resolved++;
      return seq;
    });
    const [first] = ws.frames();
    ws.end(1006);
    await vi.advanceTimersByTimeAsync(0);
    const back = await nextSocket(ws, 1000);
    expect(back.frames()).toEqual([]);
    back.open();
    expect(back.frames()).toEqual([first]);
    back.receive({ type: "ack", id: first!.id!, seq: 8 });
    expect(await reacted).toBe(8);
    back.receive({ type: "ack", id: first!.id!, seq: 8 });
    await vi.advanceTimersByTimeAsync(0);
    expect(resolved).toBe(1);
  });

  it("paces reactions to their own budget without holding up a message, and waits out a refusal for their rate", async () => {
    const { chat, ws } = await start();
    const log = storing(ws);
    ws.open({ reactionsPer10s: 2 });
    const reacted = [chat.react(1, "👍"), chat.react(1, "🎉")];
    const sent = [chat.send("not held up"), chat.send("nor this")];
    expect(await Promise.all(sent)).toEqual([2, 3]);
    expect(log.map((l) => l.frame.type)).toEqual(["react", "message", "message"]);
    await vi.advanceTimersByTimeAsync(4_999);
    expect(log).toHaveLength(3);
    await vi.advanceTimersByTimeAsync(1);
    expect(await Promise.all(reacted)).toEqual([1, 4]);

    // The room's count wins over the client's: a refused reaction waits as long as it says, and a message still goes at once.
    const onFrame = ws.onFrame!;
    let refuse = true;
    ws.onFrame = (frame) => {
      if (refuse && frame.type === "react") {
        refuse = false;
        queueMicrotask(() => ws.receive({ type: "error", id: frame.id, code: "rate_limited", message: "too many reactions", retryAfterMs: 7_000 }));
        return;
      }
      onFrame(frame);
    };
    await vi.advanceTimersByTimeAsync(10_000);
    const late = chat.react(2, "👀");
    await vi.advanceTimersByTimeAsync(0);
    const still = chat.send("still at once");
    expect(log.at(-1)?.frame).toMatchObject({ type: "message", text: "still at once" });
    expect(await still).toBe(5);
    await vi.advanceTimersByTimeAsync(6_999);
    expect(log.filter((l) => l.frame.type === "react")).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(await late).toBe(6);
  });

  it("never overtakes a message asked for before it, which it may be about; a message asked for after it does not wait for it", async () => {
    const { chat, ws } = await start();
    ws.open({ reactionsPer10s: 2 });
    const sent = chat.send("first");
    const reacted = chat.react(1, "👍");
    expect(ws.frames().map((f) => f.type)).toEqual(["message"]);
    ws.receive({ type: "ack", id: ws.frames()[0]!.id!, seq: 1 });
    expect(await sent).toBe(1);
    await vi.advanceTimersByTimeAsync(0);
    expect(ws.frames().map((f) => f.type)).toEqual(["message", "react"]);
    ws.receive({ type: "ack", id: ws.frames()[1]!.id!, seq: 2 });
    expect(await reacted).toBe(2);

    // The budget is spent: this reaction waits 5 s, and the message after it goes now.
    const waiting = chat.react(1, "🎉");
    const after = chat.send("after");
    expect(ws.frames().map((f) => f.type)).toEqual(["message", "react", "message"]);
    ws.receive({ type: "ack", id: ws.frames()[2]!.id!, seq: 3 });
    expect(await after).toBe(3);
    await vi.advanceTimersByTimeAsync(5_000);
    ws.receive({ type: "ack", id: ws.frames()[3]!.id!, seq: 4 });
    expect(await waiting).toBe(4);
  });

  it("hands over the reactions a resume learns of in the history's changes once each, in order, with those that came live", async () => {
    const { chat, ws } = await start();
    const changes: ChangeFrame[] = [];
    chat.on("change", (c) => changes.push(c));
    ws.open({ lastSeq: 1, messages: [message(1)] });
    ws.receive(reactions(1, 2));
    ws.end(1006);
    await vi.advanceTimersByTimeAsync(0);
    const back = await nextSocket(ws, 1000);
    expect(new URL(back.url).searchParams.get("since")).toBe("2");
    // A room that also lists the change the client has: it is not handed over twice.
    back.open({ lastSeq: 4, changes: [reactions(1, 2), reactions(1, 3, "🎉"), reactions(1, 4, "👀")] });
    back.receive(reactions(1, 4, "👀"));
    back.receive(reactions(1, 5, "🔥"));
    expect(changes.map((c) => c.type === "reactions" && [c.change, c.emoji])).toEqual([
      [2, "👍"],
      [3, "🎉"],
      [4, "👀"],
      [5, "🔥"],
    ]);
  });
});

describe("threads", () => {
  it("pairs each thread page with its request by id, in whatever order they come, and emits it", async () => {
    const { chat, ws } = await start();
    ws.open();
    const events: Array<ChatEvents["thread"]> = [];
    chat.on("thread", (t) => events.push(t));
    const first = chat.thread(5);
    const next = chat.thread(5, 12);
    const [a, b] = ws.frames();
    expect(a).toEqual({ type: "thread", seq: 5, id: expect.any(String) });
    expect(b).toEqual({ type: "thread", seq: 5, after: 12, id: expect.any(String) });
    const page = (id: string, replies: number[], more: boolean): ThreadFrame => ({
      type: "thread",
      id,
      seq: 5,
      root: message(5, { replies: 4 }),
      messages: replies.map((seq) => message(seq, { replyTo: { seq: 5, user: bob, text: "m5" } })),
      more,
    });
    ws.receive(page(b!.id!, [14, 15], false));
    ws.receive(page(a!.id!, [6, 12], true));
    expect((await first).messages.map((m) => m.seq)).toEqual([6, 12]);
    expect((await next).messages.map((m) => m.seq)).toEqual([14, 15]);
    expect(events.map((t) => t.more)).toEqual([false, true]);
  });

  it("rejects a thread request for a message the room does not have, and one whose connection dropped", async () => {
    const { chat, ws } = await start();
    ws.open();
    const missing = chat.thread(77);
    ws.receive({ type: "error", id: ws.frames()[0]!.id, code: "unknown_message", message: "no message 77" });
    await expect(missing).rejects.toMatchObject({ code: "unknown_message" });
    const lost = chat.thread(5);
    ws.end(1006);
    await expect(lost).rejects.toMatchObject({ code: "connection_lost" });
  });
});

describe("who is you", () => {
  it("knows every connection id of the session, and forgets them when the room's history starts over", async () => {
    const { chat, ws } = await start();
    ws.open();
    expect(chat.isYou("1")).toBe(true);
    expect(chat.isYou("2")).toBe(false);
    ws.end(1006);
    await vi.advanceTimersByTimeAsync(0);
    const back = await nextSocket(ws, 1000);
    back.open();
    expect([chat.isYou("1"), chat.isYou("2")]).toEqual([true, true]);
    back.end(1006);
    await vi.advanceTimersByTimeAsync(0);
    // A new epoch is a new counter: id 1 may be someone else now.
    const reset = await nextSocket(back, 1000);
    reset.open({ epoch: "fedcba9876543210" });
    expect([chat.isYou("1"), chat.isYou("2"), chat.isYou("3")]).toEqual([false, false, true]);
  });

  it("marks a message that mentions this client by its id now, an earlier one, or its account, in the history and live", async () => {
    const { chat, ws } = await start();
    const got: ChatMessage[] = [];
    chat.on("message", (m) => got.push(m));
    const mentions = (...mentioned: Array<{ id: string; account?: string }>) => ({ mentions: mentioned.map((m) => ({ name: "ann", ...m })) });
    ws.open({ account: "ann-sub", lastSeq: 3, messages: [message(1, mentions({ id: "1" })), message(2, mentions({ id: "90" })), message(3)] });
    ws.end(1006);
    await vi.advanceTimersByTimeAsync(0);
    const back = await nextSocket(ws, 1000);
    back.open({ account: "ann-sub", lastSeq: 3 });
    back.receive(message(4, mentions({ id: "1" })));
    back.receive(message(5, mentions({ id: "2" })));
    back.receive(message(6, mentions({ id: "44", account: "ann-sub" })));
    back.receive(message(7, mentions({ id: "45", account: "someone-else" })));
    expect(got.map((m) => [m.seq, m.mentionsMe])).toEqual([
      [1, true],
      [2, false],
      [3, false],
      [4, true],
      [5, true],
      [6, true],
      [7, false],
    ]);
  });
});

const readFrames = (ws: FakeSocket) => ws.frames().filter((f) => f.type === "read");
/** Messages 1 to n, each by bob. */
const byBob = (n: number) => Array.from({ length: n }, (_, i) => message(i + 1));

/** Every read and unread event of a client, in order. */
function reading(chat: ChatClient): { read: number[]; unread: Array<ChatEvents["unread"]> } {
  const seen = { read: [] as number[], unread: [] as Array<ChatEvents["unread"]> };
  chat.on("read", ({ seq }) => seen.read.push(seq));
  chat.on("unread", (u) => seen.unread.push(u));
  return seen;
}

describe("read positions", () => {
  it("takes readSeq from the welcome and raises it by the account's other devices, never lowering it, with a read event each time it moves", async () => {
    const { chat, ws } = await start();
    const seen = reading(chat);
    ws.open({ read: 5, lastSeq: 8, messages: byBob(8) });
    expect([chat.readSeq, chat.unread]).toEqual([5, 3]);
    ws.receive({ type: "read", seq: 7 });
    ws.receive({ type: "read", seq: 6 });
    expect([chat.readSeq, chat.unread]).toEqual([7, 1]);
    expect(seen.read).toEqual([5, 7]);
    // The room has all of it: nothing to tell it.
    await vi.advanceTimersByTimeAsync(5_000);
    expect(readFrames(ws)).toEqual([]);
  });

  it("marks read monotonically, never past what was handed over, and sends at most one read frame per 2 s, the newest position when the 2 s are up", async () => {
    const { chat, ws } = await start();
    const seen = reading(chat);
    ws.open({ lastSeq: 10, messages: byBob(10) });
    chat.markRead(3);
    expect(readFrames(ws)).toEqual([{ type: "read", seq: 3, id: expect.any(String) }]);
    chat.markRead(5);
    chat.markRead(4);
    chat.markRead(8);
    expect(chat.readSeq).toBe(8);
    await vi.advanceTimersByTimeAsync(1_999);
    expect(readFrames(ws)).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(readFrames(ws).map((f) => f.seq)).toEqual([3, 8]);
    chat.markRead(2);
    chat.markRead(50);
    expect(chat.readSeq, "what was not handed over cannot have been read").toBe(10);
    chat.markRead();
    await vi.advanceTimersByTimeAsync(2_000);
    expect(readFrames(ws).map((f) => f.seq)).toEqual([3, 8, 10]);
    expect(seen.read).toEqual([3, 5, 8, 10]);
    // A later message counts from where the reader stopped; marking read with no seq reads it too.
    ws.receive(message(11));
    expect(chat.unread).toBe(1);
    chat.markRead();
    expect([chat.readSeq, chat.unread]).toEqual([11, 0]);
  });

  it("sends again after a reconnect only a position past the one the welcome says: one marked while away, or one whose frame was lost", async () => {
    const { chat, ws } = await start();
    ws.open({ lastSeq: 8, messages: byBob(8) });
    chat.markRead(4);
    ws.end(1006);
    await vi.advanceTimersByTimeAsync(0);
    const told = await nextSocket(ws, 1000);
    told.open({ read: 4, lastSeq: 8 });
    await vi.advanceTimersByTimeAsync(5_000);
    expect(readFrames(told), "the room has it already").toEqual([]);

    told.end(1006);
    await vi.advanceTimersByTimeAsync(0);
    chat.markRead(6);
    const away = await nextSocket(told, 1000);
    away.open({ read: 4, lastSeq: 8 });
    expect(readFrames(away).map((f) => f.seq)).toEqual([6]);

    await vi.advanceTimersByTimeAsync(5_000);
    chat.markRead(8);
    expect(readFrames(away).map((f) => f.seq)).toEqual([6, 8]);
    away.end(1006);
    await vi.advanceTimersByTimeAsync(0);
    const lost = await nextSocket(away, 1000);
    // The room read the frame for 6 but not the one for 8, which went with its socket.
    lost.open({ read: 6, lastSeq: 8 });
    // Once 2 s have passed since the last read frame, on whichever socket.
    await vi.advanceTimersByTimeAsync(2_000);
    expect(readFrames(lost).map((f) => f.seq)).toEqual([8]);
    expect(chat.readSeq).toBe(8);
  });

  it("lets a listener mark read each message as it is handed over, the history's included", async () => {
    const { chat, ws } = await start();
    chat.on("message", (m) => chat.markRead(m.seq));
    ws.open({ lastSeq: 3, messages: byBob(3) });
    expect([chat.readSeq, chat.unread]).toEqual([3, 0]);
    ws.receive(message(4));
    expect([chat.readSeq, chat.unread]).toEqual([4, 0]);
  });

  it("keeps the position here alone once the room refuses it for want of an account, and never asks again", async () => {
    const { chat, ws } = await start();
    ws.open({ lastSeq: 4, messages: byBob(4) });
    chat.markRead(2);
    ws.receive({ type: "error", id: readFrames(ws)[0]!.id, code: "account_required", message: "read positions need a token or ?client=" });
    chat.markRead(4);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(readFrames(ws)).toHaveLength(1);
    ws.end(1006);
    await vi.advanceTimersByTimeAsync(0);
    const back = await nextSocket(ws, 1000);
    back.open({ lastSeq: 4 });
    await vi.advanceTimersByTimeAsync(10_000);
    expect(readFrames(back)).toEqual([]);
    expect([chat.readSeq, chat.unread]).toEqual([4, 0]);
  });

  it("sends read frames within the frames' budget, so that they never get a message refused", async () => {
    const { chat, ws } = await start();
    const { stored, refusedAt } = room(ws, 4);
    ws.open({ framesPer10s: 4, lastSeq: 3, messages: byBob(3) });
    chat.markRead(1);
    const sends = texts(6).map((text) => chat.send(text));
    await vi.advanceTimersByTimeAsync(2_000);
    chat.markRead(3);
    await vi.advanceTimersByTimeAsync(30_000);
    expect(refusedAt).toEqual([]);
    expect(stored).toEqual(texts(6));
    expect(readFrames(ws).map((f) => f.seq)).toEqual([1, 3]);
    await Promise.all(sends);
  });

  it("forgets a read frame still waiting for the budget when its socket drops: the next socket's welcome says what the room has", async () => {
    const { chat, ws } = await start();
    ws.open({ framesPer10s: 2, lastSeq: 1, messages: byBob(1) });
    const sent = chat.send("takes the one token there is");
    chat.markRead(1);
    expect(ws.frames().map((f) => f.type)).toEqual(["message"]);
    ws.end(1006);
    await vi.advanceTimersByTimeAsync(0);
    const back = await nextSocket(ws, 1000);
    back.open({ framesPer10s: 2, read: 1, lastSeq: 1 });
    back.receive({ type: "ack", id: back.frames()[0]!.id!, seq: 2 });
    expect(await sent).toBe(2);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(readFrames(back)).toEqual([]);
  });

  it("hands over receipts as the room sends them", async () => {
    const { chat, ws } = await start();
    const got: Array<ChatEvents["receipts"]> = [];
    chat.on("receipts", (r) => got.push(r));
    ws.open();
    ws.receive({ type: "receipts", receipts: [{ user: bob, seq: 4 }] });
    expect(got).toEqual([{ type: "receipts", receipts: [{ user: bob, seq: 4 }] }]);
  });
});

describe("unread", () => {
  const ann1 = ann("1");
  const mentioningAnn = { mentions: [{ id: "1", name: "ann", account: "ann-sub" }] };

  it("counts the messages by others that are not deleted, and those that mention this client, through messages, deletes, edits and reads", async () => {
    const { chat, ws } = await start();
    const seen = reading(chat);
    ws.open({
      account: "ann-sub",
      read: 1,
      lastSeq: 6,
      messages: [
        message(1),
        message(2, { deletedAt: 5, text: "" }),
        message(3, { user: ann1 }),
        message(4, mentioningAnn),
        // Written on another device of the same account.
        message(5, { user: { id: "77", name: "ann", account: "ann-sub" } }),
        message(6),
      ],
    });
    expect([chat.readSeq, chat.unread]).toEqual([1, 2]);
    ws.receive(message(7));
    ws.receive({ type: "delete", seq: 6, change: 8, deletedAt: 9 });
    ws.receive({ type: "edit", seq: 7, change: 9, user: bob, text: "@ann look", editedAt: 9, ...mentioningAnn });
    ws.receive({ type: "edit", seq: 4, change: 10, user: bob, text: "nobody", editedAt: 9 });
    ws.receive(message(11, { user: ann1 }));
    chat.markRead(7);
    expect(seen.unread).toEqual([
      { count: 1, mentions: 1 },
      { count: 2, mentions: 1 },
      { count: 3, mentions: 1 },
      { count: 2, mentions: 1 },
      { count: 2, mentions: 2 },
      { count: 2, mentions: 1 },
      { count: 0, mentions: 0 },
    ]);
    expect(chat.unread).toBe(0);
  });

  it("keeps counting across reconnects, each message once, and lowers the count when another device reads", async () => {
    const { chat, ws } = await start();
    const seen = reading(chat);
    ws.open({ lastSeq: 2, messages: byBob(2) });
    ws.end(1006);
    await vi.advanceTimersByTimeAsync(0);
    const back = await nextSocket(ws, 1000);
    expect(new URL(back.url).searchParams.get("since")).toBe("2");
    // A room that lists again a message the client has: it counts once.
    back.open({ lastSeq: 4, messages: [message(2), message(3), message(4, mentioningAnn)] });
    expect(chat.unread).toBe(4);
    back.receive({ type: "read", seq: 3 });
    expect(chat.unread).toBe(1);
    expect(seen.unread.at(-1)).toEqual({ count: 1, mentions: 1 });
  });

  it("still counts a message as read once the position passes it, after an edit of it", async () => {
    const { chat, ws } = await start();
    ws.open({ lastSeq: 7, messages: [message(3), message(5), message(7)] });
    ws.receive({ type: "edit", seq: 3, change: 8, user: bob, text: "@ann now", editedAt: 9, ...mentioningAnn });
    expect(chat.unread).toBe(3);
    ws.receive({ type: "read", seq: 5 });
    expect(chat.unread).toBe(1);
  });

  it("starts over with the room's read position and its messages when the room's history starts over", async () => {
    const { chat, ws } = await start();
    const seen = reading(chat);
    ws.open({ lastSeq: 3, messages: byBob(3) });
    chat.markRead(3);
    ws.receive(message(4));
    ws.end(1006);
    await vi.advanceTimersByTimeAsync(0);
    const back = await nextSocket(ws, 1000);
    back.open({ epoch: "fedcba9876543210", reset: true, lastSeq: 2, messages: byBob(2) });
    expect([chat.readSeq, chat.unread]).toEqual([0, 2]);
    expect(seen.read).toEqual([3, 0]);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(readFrames(back), "nothing was read in the new history").toEqual([]);
  });
});

describe("search", () => {
  const found = (id: string, q: string, seqs: number[], more: boolean): SearchFrame => ({
    type: "search",
    id,
    q,
    results: seqs.map((seq) => ({ seq, user: bob, text: `m${seq}`, at: 0, snippet: `[m${seq}]` })),
    more,
  });

  it("pairs each page of results with its request by id, in whatever order they come, and emits it", async () => {
    const { chat, ws } = await start();
    ws.open();
    const events: Array<ChatEvents["search"]> = [];
    chat.on("search", (s) => events.push(s));
    const first = chat.search("lunch");
    const older = chat.search("lunch", 40);
    const [a, b] = ws.frames();
    expect(a).toEqual({ type: "search", q: "lunch", id: expect.any(String) });
    expect(b).toEqual({ type: "search", q: "lunch", before: 40, id: expect.any(String) });
    ws.receive(found(b!.id!, "lunch", [12], false));
    ws.receive(found(a!.id!, "lunch", [60, 40], true));
    expect((await first).results.map((r) => r.seq)).toEqual([60, 40]);
    expect((await older).results.map((r) => r.seq)).toEqual([12]);
    expect(events.map((s) => s.more)).toEqual([false, true]);
  });

  it("rejects a query the room cannot read with bad_query, and one whose connection dropped", async () => {
    const { chat, ws } = await start();
    ws.open();
    const bad = chat.search('"unclosed');
    ws.receive({ type: "error", id: ws.frames()[0]!.id, code: "bad_query", message: "the query has an unclosed quote" });
    await expect(bad).rejects.toEqual(new ChatError("bad_query", "the query has an unclosed quote"));
    const lost = chat.search("lunch");
    ws.end(1006);
    await expect(lost).rejects.toMatchObject({ code: "connection_lost" });
  });
});

describe("a person's rooms and direct messages over HTTP", () => {
  /** What the stubbed server was asked: method, URL, headers and body. */
  let calls: Array<{ method: string; url: string; headers: Record<string, string>; body: unknown }> = [];

  function serve(reply: () => Response): void {
    calls = [];
    vi.stubGlobal("fetch", async (url: URL, init: RequestInit) => {
      const body = typeof init.body === "string" ? JSON.parse(init.body) : undefined;
      calls.push({ method: init.method ?? "GET", url: String(url), headers: init.headers as Record<string, string>, body });
      return reply();
    });
  }

  it("resolves with the server's answers: the rooms, nothing for a leave, the direct room for a JSON body naming whom", async () => {
    const rooms: MyRooms = { rooms: [{ room: "lobby", lastSeq: 9, lastAt: 1, read: 7, unread: 2, mentions: 1 }] };
    serve(() => Response.json(rooms));
    expect(await ChatClient.myRooms("http://chat.test", "star-token")).toEqual(rooms);
    serve(() => new Response(null, { status: 204 }));
    expect(await ChatClient.leaveRoom("wss://chat.test/", "star-token", "a room/x")).toBeUndefined();
    const direct: DirectRoom = { room: "dm-0123", url: "https://chat.test/rooms/dm-0123", wsUrl: "wss://chat.test/rooms/dm-0123", with: "bob-sub" };
    serve(() => Response.json(direct, { status: 201 }));
    expect(await ChatClient.openDirect("http://chat.test", "star-token", "bob-sub")).toEqual(direct);
    expect(calls).toEqual([
      { method: "POST", url: "http://chat.test/api/dms", headers: expect.objectContaining({ Authorization: "Bearer star-token" }), body: { to: "bob-sub" } },
    ]);
  });

  it("asks with the method, path and bearer header each route needs, on the server the base names, whatever its scheme", async () => {
    const asked: string[] = [];
    serve(() => Response.json({ rooms: [] }));
    await ChatClient.myRooms("http://chat.test", "t");
    asked.push(...calls.map((c) => `${c.method} ${c.url} ${c.headers.Authorization}`));
    serve(() => new Response(null, { status: 204 }));
    await ChatClient.leaveRoom("wss://chat.test/", "t", "a room/x");
    asked.push(...calls.map((c) => `${c.method} ${c.url} ${c.headers.Authorization}`));
    expect(asked).toEqual(["GET http://chat.test/api/me/rooms Bearer t", "DELETE https://chat.test/api/me/rooms/a%20room%2Fx Bearer t"]);
  });

  it("rejects an error answer with a ChatError holding the server's code, words and when to retry", async () => {
    serve(() => Response.json({ code: "token_required", message: "a token for every room is needed" }, { status: 401 }));
    await expect(ChatClient.myRooms("http://chat.test", "t")).rejects.toEqual(new ChatError("token_required", "a token for every room is needed"));
    serve(() => Response.json({ code: "rate_limited", message: "too many requests" }, { status: 429, headers: { "Retry-After": "3" } }));
    await expect(ChatClient.openDirect("http://chat.test", "t", "bob")).rejects.toEqual(new ChatError("rate_limited", "too many requests", 3000));
    serve(() => Response.json({ code: "forbidden", message: "not yours", retryAfterMs: 1500 }, { status: 403 }));
    await expect(ChatClient.leaveRoom("http://chat.test", "t", "x")).rejects.toMatchObject({ code: "forbidden", retryAfterMs: 1500 });
    serve(() => new Response("<html>bad gateway</html>", { status: 502, statusText: "Bad Gateway" }));
    await expect(ChatClient.myRooms("http://chat.test", "t")).rejects.toMatchObject({ name: "ChatError", code: "http_502" });
    vi.stubGlobal("fetch", async () => {
      throw new TypeError("fetch failed", { cause: new Error("connect ECONNREFUSED 127.0.0.1:9") });
    });
    await expect(ChatClient.myRooms("http://127.0.0.1:9", "t")).rejects.toEqual(
      new ChatError("unreachable", "cannot reach 127.0.0.1:9: connect ECONNREFUSED 127.0.0.1:9"),
    );
  });
});
