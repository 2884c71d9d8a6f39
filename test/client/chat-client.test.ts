import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ChatClient, ChatError, type ChatClientOptions, type ChatEvents } from "../../src/client/chat-client";
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
