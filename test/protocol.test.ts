import { describe, expect, it } from "vitest";
import { alarmPeriodMs, DEFAULTS, readConfig } from "../src/platform/config";
import { isSilent } from "../src/sockets/heartbeat";
import { parseJoin, roomSegment } from "../src/worker/join";
import { checkText, CONTINUATION, Outgoing, parseClientFrame, toText, type HistoryFrame, type PresenceFrame, type ServerFrame } from "../src/protocol";

describe("parseClientFrame", () => {
  it.each([
    ["plain text", "hello", "hello"],
    ["text around spaces", "  hi there \n", "hi there"],
    ["JSON that is not an object", "[1,2]", "[1,2]"],
    ["a JSON string", '"quoted"', '"quoted"'],
    ["an object without a type", '{"text":"x"}', '{"text":"x"}'],
    ["an object whose type is not a string", '{"type":7}', '{"type":7}'],
    ["broken JSON", '{"type":"message",', '{"type":"message",'],
  ])("treats %s as a chat message as typed", (_, data, text) => {
    expect(parseClientFrame(data, 2000)).toEqual({ ok: true, frame: { type: "message", text } });
  });

  it("reads a JSON message with and without a client id", () => {
    expect(parseClientFrame('{"type":"message","text":"hi","id":"m1"}', 2000)).toEqual({
      ok: true,
      frame: { type: "message", text: "hi", id: "m1" },
    });
    expect(parseClientFrame('{"type":"message","text":"hi"}', 2000)).toEqual({ ok: true, frame: { type: "message", text: "hi" } });
  });

  it.each([
    ["text is missing", { type: "message" }],
    ["text is a number", { type: "message", text: 5 }],
    ["id is empty", { type: "message", text: "x", id: "" }],
    ["id is too long", { type: "message", text: "x", id: "i".repeat(65) }],
    ["id is a number", { type: "message", text: "x", id: 1 }],
  ])("refuses a message whose %s with bad_message", (_, frame) => {
    const parsed = parseClientFrame(JSON.stringify(frame), 2000);
    expect(parsed.ok ? null : parsed.error.code).toBe("bad_message");
  });

  it("refuses empty messages, typed or in JSON", () => {
    for (const data of ["", "   ", '{"type":"message","text":" "}']) {
      const parsed = parseClientFrame(data, 2000);
      expect(parsed.ok ? null : parsed.error.code).toBe("empty_message");
    }
  });

  it("reads who, with or without the id to page after, and refuses unknown types", () => {
    expect(parseClientFrame('{"type":"who"}', 2000)).toEqual({ ok: true, frame: { type: "who" } });
    expect(parseClientFrame('{"type":"who","after":"200"}', 2000)).toEqual({ ok: true, frame: { type: "who", after: "200" } });
    for (const after of [200, "", "ann", "-1", "1".repeat(16)]) {
      const bad = parseClientFrame(JSON.stringify({ type: "who", after }), 2000);
      expect(bad.ok ? null : bad.error.code).toBe("bad_message");
    }
    const parsed = parseClientFrame('{"type":"shout","text":"x"}', 2000);
    expect(parsed.ok ? null : parsed.error).toEqual({ type: "error", code: "unknown_type", message: 'unknown frame type "shout"' });
  });
});

describe("text format", () => {
  const ann = { id: "1", name: "ann" };
  const bob = { id: "2", name: "bob" };
  const limits = { framesPer10s: 20, frameBytes: 16384, messageChars: 2000, typingPer10s: 10, reactionsPer10s: 20 };
  const people = (...names: string[]) => names.map((name, i) => ({ id: String(i + 10), name }));
  const presence = (over: Partial<PresenceFrame>): PresenceFrame => ({ type: "presence", joined: [], left: [], renamed: [], online: 2, at: 0, ...over });
  it.each<[ServerFrame, string]>([
    [
      {
        type: "welcome",
        room: "lobby",
        you: ann,
        users: [ann, bob],
        more: false,
        online: 2,
        tickSeconds: 30,
        typingSeconds: 6,
        limits,
        lastSeq: 0,
        epoch: "0123456789abcdef",
        read: 0,
        at: 0,
      },
      "Welcome to the chat room lobby! You are ann. Online: ann, bob",
    ],
    [
      {
        type: "welcome",
        room: "lobby",
        you: ann,
        users: [ann, bob],
        more: true,
        online: 1000,
        tickSeconds: 30,
        typingSeconds: 6,
        limits,
        lastSeq: 0,
        epoch: "0123456789abcdef",
        read: 0,
        at: 0,
      },
      "Welcome to the chat room lobby! You are ann. Online: ann, bob and 998 more",
    ],
    [presence({ joined: [bob] }), "bob entered the chat room."],
    [presence({ joined: people("ann", "bob") }), "ann and bob entered the chat room."],
    [presence({ joined: people("ann", "bob", "cat") }), "ann, bob and cat entered the chat room."],
    [presence({ joined: people("ann", "bob", "cat", "dan", "eve") }), "ann, bob and 3 others entered the chat room."],
    [presence({ left: [{ user: bob, reason: "closed" }] }), "bob left the chat room."],
    [presence({ renamed: [{ user: { id: "1", name: "annie" }, from: "ann" }] }), "ann is now known as annie."],
    [
      presence({ joined: [bob], renamed: people("b", "c", "d", "e").map((user) => ({ user, from: "x" })), left: [{ user: ann, reason: "timeout" }] }),
      "bob entered the chat room. x is now known as b. x is now known as c. 2 others changed their names. ann left the chat room.",
    ],
    [presence({ online: 734 }), "Online: 734"],
    [{ type: "message", seq: 1, user: bob, text: "hi", at: 0 }, "bob: hi"],
    [{ type: "tick", now: Date.UTC(2026, 10, 22, 9, 30), online: 3 }, "Time: 2026-11-22T09:30:00.000Z. Online: 3"],
    [{ type: "users", users: [ann, bob], online: 2, more: false }, "Online: ann, bob"],
    [{ type: "users", users: [ann, bob], online: 5, more: true }, 'Online: ann, bob and 3 more (send {"type":"who","after":"2"} for more)'],
    [{ type: "ack", id: "m1", seq: 7 }, "ack: m1 (#7)"],
    [{ type: "error", code: "unsupported", message: "no binary" }, "error: no binary"],
    [{ type: "renewed", exp: Date.UTC(2026, 10, 25, 10) / 1000 }, "Your token now lasts until 2026-11-25T10:00:00.000Z."],
    [{ type: "moderated", action: "kick", user: { id: "5", name: "eve" } }, "Done: eve was kicked."],
    [
      { type: "moderated", action: "ban", user: { id: "6", name: "zed" }, until: Date.UTC(2026, 10, 25, 10) },
      "Done: zed was banned until 2026-11-25T10:00:00.000Z.",
    ],
    [{ type: "moderated", action: "unban", user: { id: "6", name: "zed" } }, "Done: zed was unbanned."],
    [{ type: "moderated", action: "mute", user: bob, until: Date.UTC(2026, 10, 25, 9, 10) }, "Done: bob was muted until 2026-11-25T09:10:00.000Z."],
    [{ type: "moderated", action: "unmute", user: bob }, "Done: bob was unmuted."],
    [
      { type: "closing", code: 4001, reason: "kicked", message: "a moderator removed you from the room" },
      "Disconnected: a moderator removed you from the room.",
    ],
    [
      { type: "closing", code: 4003, reason: "banned", message: "a moderator banned you until 2026-11-25T10:00:00.000Z", until: Date.UTC(2026, 10, 25, 10) },
      "Disconnected: a moderator banned you until 2026-11-25T10:00:00.000Z.",
    ],
  ])("writes %j in the original's words", (frame, line) => {
    expect(toText(frame)).toBe(line);
  });

  it("writes a history as one line per message, with a notice for a gap or a reset", () => {
    const history = (over: Partial<HistoryFrame>): HistoryFrame => ({
      type: "history",
      messages: [
        { type: "message", seq: 4, user: ann, text: "one", at: 0 },
        { type: "message", seq: 5, user: bob, text: "two", at: 0 },
      ],
      changes: [],
      oldestSeq: 4,
      lastSeq: 5,
      gap: false,
      reset: false,
      more: false,
      epoch: "0123456789abcdef",
      ...over,
    });
    expect(toText(history({}))).toBe("ann: one\nbob: two");
    expect(toText(history({ gap: true }))).toBe("(some messages you missed are no longer kept)\nann: one\nbob: two");
    expect(toText(history({ reset: true }))).toMatch(/^\(the room's history was reset; here are its latest messages\)\n/);
    expect(toText(history({ messages: [] }))).toBeNull();
    expect(new Outgoing(history({ messages: [] })).in("text")).toBeNull();
    expect(toText(history({ more: true }))).toBe('ann: one\nbob: two\n(more messages follow; send {"type":"history","after":5} for them)');
  });

  it("indents every further line of a message, so that none can pass for another line", () => {
    const forged = checkText("hi\nadmin: the server moves to evil.example\r\nbob left the chat room.\rtoo", 2000);
    expect(forged).toEqual({ ok: true, text: "hi\nadmin: the server moves to evil.example\nbob left the chat room.\ntoo" });
    const frame: ServerFrame = { type: "message", seq: 1, user: { id: "3", name: "mal" }, text: forged.ok ? forged.text : "", at: 0 };
    const lines = toText(frame)!.split("\n");
    expect(lines).toEqual(["mal: hi", "  admin: the server moves to evil.example", "  bob left the chat room.", "  too"]);
    expect(lines.slice(1).every((line) => line.startsWith(CONTINUATION))).toBe(true);
    expect(toText(frame)).not.toContain("\r");
    // In a history too.
    expect(
      toText({ type: "history", messages: [frame], changes: [], oldestSeq: 1, lastSeq: 1, gap: false, reset: false, more: false, epoch: "0123456789abcdef" }),
    ).toBe(lines.join("\n"));
  });

  it("encodes a broadcast once per format", () => {
    const out = new Outgoing(presence({ joined: [bob] }));
    expect(out.in("json")).toBe(out.in("json"));
    expect(out.in("json")).toBe('{"type":"presence","joined":[{"id":"2","name":"bob"}],"left":[],"renamed":[],"online":2,"at":0}');
    expect(out.in("text")).toBe("bob entered the chat room.");
  });
});

describe("parseJoin", () => {
  it("finds the room segment of room paths only", () => {
    expect(roomSegment("/rooms/lobby")).toBe("lobby");
    expect(roomSegment("/rooms/")).toBe("");
    expect(roomSegment("/rooms/a/b")).toBeNull();
    expect(roomSegment("/api/rooms/a")).toBeNull();
  });

  it("defaults to JSON, the room's own name for the user, and no batches", () => {
    expect(parseJoin("lobby", new URLSearchParams())).toEqual({
      ok: true,
      join: { room: "lobby", name: null, format: "json", since: null, client: null, epoch: null, batch: false },
    });
    expect(parseJoin("lobby", new URLSearchParams("name=+ann+&format=text&since=12&client=tab-1&epoch=00ff00ff00ff00ff&batch=1"))).toEqual({
      ok: true,
      join: { room: "lobby", name: "ann", format: "text", since: 12, client: "tab-1", epoch: "00ff00ff00ff00ff", batch: true },
    });
  });

  it.each([
    ["since=-1", "bad_since"],
    ["since=1.5", "bad_since"],
    ["since=", "bad_since"],
    ["since=1e3", "bad_since"],
    ["client=", "bad_client"],
    ["client=a%20b", "bad_client"],
    [`client=${"c".repeat(65)}`, "bad_client"],
    ["epoch=", "bad_epoch"],
    ["epoch=00FF00FF00FF00FF", "bad_epoch"],
    ["epoch=00ff00ff", "bad_epoch"],
    ["batch=", "bad_batch"],
    ["batch=true", "bad_batch"],
    ["batch=2", "bad_batch"],
  ])("refuses %s with %s", (query, code) => {
    expect(parseJoin("lobby", new URLSearchParams(query))).toMatchObject({ ok: false, code });
  });
});

describe("config", () => {
  it("reads numbers and strings, and defaults what is missing", () => {
    expect(readConfig({})).toEqual(DEFAULTS);
    expect(readConfig({ TICK_SECONDS: 5, HEARTBEAT_TIMEOUT_SECONDS: "0", HISTORY_LIMIT: "20" })).toEqual({
      ...DEFAULTS,
      tickSeconds: 5,
      heartbeatTimeoutSeconds: 0,
      historyLimit: 20,
    });
  });

  it("keeps at least one message, since the newest carries the sequence on", () => {
    expect(() => readConfig({ HISTORY_LIMIT: 0 })).toThrow(/HISTORY_LIMIT must be a whole number of at least 1/);
  });

  it("puts at least one socket on each object of a room", () => {
    expect(readConfig({ SHARD_SIZE: "10" }).shardSize).toBe(10);
    expect(() => readConfig({ SHARD_SIZE: "0" })).toThrow(/SHARD_SIZE must be a whole number of at least 1/);
  });

  it.each(["-1", "1.5", "soon", "1e99"])("refuses %s seconds rather than guessing", (value) => {
    expect(() => readConfig({ TICK_SECONDS: value })).toThrow(/TICK_SECONDS/);
  });

  it("runs the alarm at the tick period, else the heartbeat timeout, else never", () => {
    expect(alarmPeriodMs({ ...DEFAULTS, tickSeconds: 30, heartbeatTimeoutSeconds: 60 })).toBe(30_000);
    expect(alarmPeriodMs({ ...DEFAULTS, tickSeconds: 0, heartbeatTimeoutSeconds: 60 })).toBe(60_000);
    expect(alarmPeriodMs({ ...DEFAULTS, tickSeconds: 0, heartbeatTimeoutSeconds: 0 })).toBeNull();
  });
});

describe("isSilent", () => {
  it("never judges a socket that has sent a frame but never pinged", () => {
    expect(isSilent({ joinedAt: 0, seenAt: 5, lastPingAt: null }, 1_000_000, 60_000)).toBe(false);
  });

  it("judges a socket that has sent nothing at all from when it joined", () => {
    expect(isSilent({ joinedAt: 0, lastPingAt: null }, 59_999, 60_000)).toBe(false);
    expect(isSilent({ joinedAt: 0, lastPingAt: null }, 60_000, 60_000)).toBe(true);
  });

  it("counts the later of the last ping and the last frame", () => {
    expect(isSilent({ joinedAt: 0, seenAt: 0, lastPingAt: 0 }, 60_000, 60_000)).toBe(true);
    expect(isSilent({ joinedAt: 0, seenAt: 59_999, lastPingAt: 0 }, 60_000, 60_000)).toBe(false);
    expect(isSilent({ joinedAt: 0, lastPingAt: 1 }, 60_000, 60_000)).toBe(false);
  });

  it("is off with a zero timeout", () => {
    expect(isSilent({ joinedAt: 0, seenAt: 0, lastPingAt: 0 }, 1_000_000, 0)).toBe(false);
    expect(isSilent({ joinedAt: 0, lastPingAt: null }, 1_000_000, 0)).toBe(false);
  });
});
