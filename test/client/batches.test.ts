import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import {
  ChatClient,
  type ChatError,
  type ChatEvents,
  type HistoryFrame,
  type MessageFrame,
  type ServerFrame,
  type User,
  type WelcomeFrame,
} from "../../src/client/chat-client";
import { closing } from "../../src/protocol";
import { FakeSocket } from "../support/fake-socket";

// A room that batches sends the same frames in fewer WebSocket messages:
// whatever the packing, the app must see what it sees frame by frame.

const URL_ = "ws://room.test/rooms/fake";
const EPOCH = "0123456789abcdef";
/** Every event, so that none can differ unseen: the type makes the list complete. */
const EVENTS = Object.keys({
  state: 0,
  welcome: 0,
  message: 0,
  change: 0,
  reset: 0,
  gap: 0,
  presence: 0,
  typing: 0,
  tick: 0,
  ack: 0,
  error: 0,
  refused: 0,
  renewed: 0,
  users: 0,
  renamed: 0,
  moderated: 0,
  thread: 0,
  search: 0,
  read: 0,
  unread: 0,
  receipts: 0,
} satisfies Record<keyof ChatEvents, 0>) as Array<keyof ChatEvents>;

/** What escaped to the runtime, as a throwing WebSocket listener's error does: a test takes what it expects. */
const uncaught: string[] = [];
const clients: ChatClient[] = [];

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(new Date("2026-12-01T12:00:00Z"));
  // Backoff jitter, which the `state` events show.
  vi.spyOn(Math, "random").mockReturnValue(0.5);
  FakeSocket.made = [];
  vi.stubGlobal("WebSocket", FakeSocket);
  process.setUncaughtExceptionCaptureCallback((error) => uncaught.push(error instanceof Error ? error.message : String(error)));
});

afterEach(() => {
  for (const client of clients.splice(0)) client.close();
  process.setUncaughtExceptionCaptureCallback(null);
  expect(uncaught.splice(0), "errors that no test expected").toEqual([]);
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

function connect(): ChatClient {
  const chat = new ChatClient({ url: URL_, name: "ann", clientId: "ann-device" });
  clients.push(chat);
  return chat;
}

/** The socket the client opens after `after`, within a second of fake time (a first retry waits at most half of one). */
async function nextSocket(after: FakeSocket | undefined): Promise<FakeSocket> {
  for (let waited = 0; FakeSocket.made.at(-1) === after; waited += 10) {
    if (waited > 1000) throw new Error(`no new socket within 1000 ms; ${FakeSocket.made.length} made`);
    await vi.advanceTimersByTimeAsync(10);
  }
  return FakeSocket.last;
}

const bob: User = { id: "90", name: "bob" };
const carol: User = { id: "91", name: "carol" };
const dave: User = { id: "92", name: "dave" };
const ann1: User = { id: "1", name: "ann" };
const ann2: User = { id: "2", name: "ann" };
const message = (seq: number, user: User = bob, extra: Partial<MessageFrame> = {}): MessageFrame => ({
  type: "message",
  seq,
  user,
  text: `m${seq}`,
  at: seq,
  ...extra,
});

function welcome(you: User, lastSeq: number, read: number): WelcomeFrame {
  return {
    type: "welcome",
    room: "fake",
    you,
    users: [you, bob],
    more: false,
    online: 2,
    tickSeconds: 30,
    typingSeconds: 6,
    limits: { framesPer10s: 0, frameBytes: 16_384, messageChars: 2000, typingPer10s: 0, reactionsPer10s: 0 },
    lastSeq,
    epoch: EPOCH,
    read,
    at: 0,
  };
}

function history(messages: MessageFrame[], changes: HistoryFrame["changes"], lastSeq: number): HistoryFrame {
  return { type: "history", messages, changes, oldestSeq: messages[0]?.seq ?? 0, lastSeq, gap: false, reset: false, more: false, epoch: EPOCH };
}

/** A frame the room sends, or one that answers a request the client made before, by the id it sent. */
type Step = ServerFrame | ((ws: FakeSocket) => ServerFrame);

const requestId = (ws: FakeSocket, type: string) => ws.frames().find((f) => f.type === type)!.id!;

/** The message whose listener throws, in the middle of a part. */
const THE_MESSAGE_THAT_THROWS = 7;

/**
 * The room's side, socket by socket, each in parts: what the room sends
 * before it reads what the client answers to them, which no batch can
 * span. Before the first socket, the app sent three messages (`s1`
 * stored, `s2` refused, `s3` still pending at the timeout, stored after
 * the reconnect) and asked who is there; a listener throws on one message.
 * Each socket's last frames come after its closing, and must not count.
 */
const SCRIPT: Step[][][] = [
  [
    [
      welcome(ann1, 4, 1),
      history(
        [message(1), message(2, ann1), message(3, bob, { text: "@ann hi", mentions: [{ id: "1", name: "ann" }] })],
        [{ type: "reactions", seq: 2, change: 4, reactions: [{ emoji: "👍", count: 1, users: [bob.id] }], user: bob, emoji: "👍" }],
        4,
      ),
    ],
    [
      { type: "presence", joined: [carol], left: [], renamed: [], online: 3, at: 1 },
      { type: "typing", users: [bob], count: 1, started: [bob] },
      message(5),
      { type: "ack", id: "s1", seq: 6 },
    ],
    [
      message(6, ann1, { text: "hello" }),
      message(THE_MESSAGE_THAT_THROWS, carol),
      { type: "typing", users: [], count: 0, started: [] },
      { type: "error", id: "s2", code: "muted", message: "you are muted" },
      { type: "reactions", seq: 5, change: 8, reactions: [{ emoji: "🎉", count: 1, users: [carol.id] }], user: carol, emoji: "🎉" },
      { type: "delete", seq: 1, change: 9, deletedAt: 9 },
      { type: "read", seq: 5 },
      { type: "edit", seq: 7, change: 10, user: carol, text: "@ann look", editedAt: 10, mentions: [{ id: "1", name: "ann" }] },
      { type: "receipts", receipts: [{ user: bob, seq: 10 }] },
      { type: "tick", now: 11, online: 3 },
      (ws) => ({ type: "users", id: requestId(ws, "who"), users: [ann1, bob, carol], online: 3, more: false }),
      message(11, carol),
      closing("timeout", "nothing heard for too long"),
      { type: "presence", joined: [dave], left: [], renamed: [], online: 4, at: 12 },
      message(12),
    ],
  ],
  [
    [welcome(ann2, 12, 5), history([message(12)], [], 12)],
    [
      { type: "ack", id: "s3", seq: 13 },
      message(13, ann2, { text: "third" }),
      { type: "typing", users: [carol], count: 1, started: [carol] },
      { type: "presence", joined: [], left: [{ user: carol, reason: "closed" }], renamed: [], online: 2, at: 14 },
      closing("kicked", "a moderator kicked you"),
      { type: "tick", now: 15, online: 2 },
      message(14),
    ],
  ],
];

/** How one part of the script goes: as runs of frames, each a batch or a lone frame. */
type Packing = Array<{ size: number; batch: boolean }>;
type Packer = (frames: number) => Packing;

const alone: Packer = (frames) => Array.from({ length: frames }, () => ({ size: 1, batch: false }));
const oneBatch: Packer = (frames) => [{ size: frames, batch: true }];

/** A seeded generator (mulberry32), so that a failing packing can be played again. */
function generator(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Random runs: a cut after each frame or not, and a run of one a batch now and then, which the room never sends but may. */
function randomPacker(seed: number): Packer {
  const random = generator(seed);
  return (frames) => {
    const packing: Packing = [];
    let size = 0;
    for (let i = 0; i < frames; i++) {
      size++;
      if (i === frames - 1 || random() < 0.4) {
        packing.push({ size, batch: size > 1 || random() < 0.3 });
        size = 0;
      }
    }
    return packing;
  };
}

interface Transcript {
  /** Each event, with what the client's getters said in its listener. */
  events: unknown[];
  /** How each send and request settled, in the order they did. */
  settled: string[];
  uncaught: string[];
  sockets: Array<{ url: string; sent: string[]; closedWith: FakeSocket["closedWith"] }>;
  final: { state: string; lastSeq: number; readSeq: number; unread: number; pending: string[] };
}

/** Plays the script to a new client with each part packed as `pack` says. */
async function converse(pack: Packer): Promise<Transcript> {
  // Request ids, the same in every run.
  let drawn = 0;
  vi.spyOn(crypto, "getRandomValues").mockImplementation(<T extends ArrayBufferView | null>(array: T): T => {
    if (array instanceof Uint8Array) array.fill(++drawn);
    return array;
  });
  const chat = connect();
  const snapshot = () => ({ state: chat.state, lastSeq: chat.lastSeq, readSeq: chat.readSeq, unread: chat.unread, pending: chat.pending.map((p) => p.id) });
  const events: unknown[] = [];
  for (const event of EVENTS) chat.on(event, (value) => events.push({ event, value: structuredClone(value), ...snapshot() }));
  chat.on("message", (m) => {
    if (m.seq === THE_MESSAGE_THAT_THROWS) throw new Error(`a listener failed on #${m.seq}`);
  });
  const settled: string[] = [];
  const settle = (name: string, promise: Promise<unknown>) =>
    void promise.then(
      (value) => settled.push(`${name}: ${JSON.stringify(value)}`),
      (error: ChatError) => settled.push(`${name}: refused, ${error.code}`),
    );
  settle("s1", chat.send("hello", { id: "s1" }));
  settle("s2", chat.send("second", { id: "s2" }));
  settle("s3", chat.send("third", { id: "s3" }));
  settle("who", chat.who());

  let ws: FakeSocket | undefined;
  for (const parts of SCRIPT) {
    const socket = await nextSocket(ws);
    ws = socket;
    for (const steps of parts) {
      const frames = steps.map((step) => (typeof step === "function" ? step(socket) : step));
      for (const { size, batch } of pack(frames.length)) {
        const run = frames.splice(0, size);
        socket.receive(batch ? { type: "batch", frames: run } : run[0]!);
        // Between two WebSocket messages a runtime runs what their handling queued.
        await vi.advanceTimersByTimeAsync(0);
      }
    }
  }
  await vi.advanceTimersByTimeAsync(0);
  return {
    events,
    settled,
    uncaught: uncaught.splice(0),
    sockets: FakeSocket.made.map(({ url, sent, closedWith }) => ({ url, sent, closedWith })),
    final: snapshot(),
  };
}

/** The events of one kind, without the snapshots. */
const values = (transcript: Transcript, name: keyof ChatEvents) =>
  (transcript.events as Array<{ event: string; value: unknown }>).filter((e) => e.event === name).map((e) => e.value);

describe("batches", () => {
  it("plays a conversation frame by frame as the script means it", async () => {
    // What the other packings are held to, so that it must say something.
    const baseline = await converse(alone);
    expect(values(baseline, "message").map((m) => (m as MessageFrame).seq)).toEqual([1, 2, 3, 5, 6, 7, 11, 12, 13]);
    expect(values(baseline, "change").map((c) => (c as { change: number }).change)).toEqual([4, 8, 9, 10]);
    expect(values(baseline, "typing")).toEqual([
      { users: [bob], count: 1 },
      { users: [], count: 0 },
      { users: [carol], count: 1 },
      // The kick drops the socket, and with it who was typing.
      { users: [], count: 0 },
    ]);
    expect(values(baseline, "presence").map((p) => (p as { online: number }).online)).toEqual([3, 2]);
    expect(values(baseline, "tick")).toEqual([{ type: "tick", now: 11, online: 3 }]);
    expect(values(baseline, "users")).toHaveLength(1);
    expect(values(baseline, "refused")).toEqual([{ refusal: expect.objectContaining({ code: "kicked" }), retryInMs: null }]);
    expect(baseline.settled).toEqual(["s1: 6", "s2: refused, muted", expect.stringMatching(/^who: \{"type":"users"/), "s3: 13"]);
    expect(baseline.uncaught).toEqual([`a listener failed on #${THE_MESSAGE_THAT_THROWS}`]);
    expect(baseline.sockets).toHaveLength(2);
    expect(baseline.final).toEqual({ state: "closed", lastSeq: 13, readSeq: 5, unread: 3, pending: [] });
  });

  it("gives the same events, answers and state whatever runs of frames come as batches", async () => {
    const baseline = await converse(alone);
    // Each part in one batch, closings and the frame that throws in the middle of theirs; then random runs.
    const packers: Array<[string, Packer]> = [["each part in one batch", oneBatch]];
    for (let seed = 1; seed <= 40; seed++) packers.push([`random packing, seed ${seed}`, randomPacker(seed)]);
    for (const [name, pack] of packers) {
      FakeSocket.made = [];
      expect(await converse(pack), name).toEqual(baseline);
    }
  });

  it("asks for batches on every connection", async () => {
    connect();
    const first = await nextSocket(undefined);
    first.receive(welcome(ann1, 0, 0));
    first.receive(history([], [], 0));
    first.end(1006);
    const second = await nextSocket(first);
    expect([first, second].map((ws) => new URL(ws.url).searchParams.get("batch"))).toEqual(["1", "1"]);
  });

  it("hands over the rest of a batch after a frame whose listener throws, and lets the error out as that frame alone would have", async () => {
    const chat = connect();
    const seen = messagesOf(chat);
    chat.on("message", (m) => {
      if (m.seq === 1) throw new Error("a listener failed");
    });
    const ws = await live();
    ws.receive({ type: "batch", frames: [message(1), message(2)] });
    await vi.advanceTimersByTimeAsync(0);
    expect(seen).toEqual([1, 2]);
    expect(uncaught.splice(0)).toEqual(["a listener failed"]);
  });

  it("reads nothing from a batch after a frame that ended its socket: a closing frame, or the app closing the client", async () => {
    const timedOut = connect();
    const seen = messagesOf(timedOut);
    const ws = await live();
    const ticks: unknown[] = [];
    timedOut.on("tick", (tick) => ticks.push(tick));
    ws.receive({ type: "batch", frames: [message(1), closing("timeout", "nothing heard"), { type: "tick", now: 2, online: 1 }, message(2)] });
    expect(seen).toEqual([1]);
    expect(ticks).toEqual([]);
    expect(timedOut.state).toBe("waiting");

    const closed = connect();
    const heard = messagesOf(closed);
    const presences: unknown[] = [];
    closed.on("presence", (presence) => presences.push(presence));
    closed.on("message", () => closed.close());
    (await live()).receive({ type: "batch", frames: [message(1), { type: "presence", joined: [bob], left: [], renamed: [], online: 2, at: 1 }, message(2)] });
    expect(heard).toEqual([1]);
    expect(presences).toEqual([]);
  });

  it("takes a batch after a ping for a sign of life, as any message", async () => {
    const chat = new ChatClient({ url: URL_, name: "ann", pingEveryMs: 1000, pongWithinMs: 500 });
    clients.push(chat);
    const ws = await live();
    await vi.advanceTimersByTimeAsync(1000);
    expect(ws.sent).toEqual(["ping"]);
    ws.receive({ type: "batch", frames: [message(1), message(2)] });
    await vi.advanceTimersByTimeAsync(501);
    expect(ws.closedWith).toBeNull();
    // No pong and no message after the next ping: that socket is replaced.
    await vi.advanceTimersByTimeAsync(1000);
    expect(ws.closedWith).not.toBeNull();
  });

  it("ignores a batch it cannot read, as a message that is not JSON, and a batch inside one, as any frame it does not know", async () => {
    const chat = connect();
    const seen = messagesOf(chat);
    const ws = await live();
    const malformed = [{ type: "batch" }, { type: "batch", frames: 5 }, { type: "batch", frames: null }, { type: "batch", frames: { 0: message(1) } }];
    for (const batch of malformed) ws.receive(JSON.stringify(batch));
    ws.receive({ type: "batch", frames: [message(1), { type: "batch", frames: [message(2)] } as unknown as ServerFrame, message(3)] });
    ws.receive(message(4));
    await vi.advanceTimersByTimeAsync(0);
    expect(seen).toEqual([1, 3, 4]);
    expect(uncaught).toEqual([]);
    expect(chat.lastSeq).toBe(4);
  });
});

/** The seq of each message event, as it comes. */
function messagesOf(chat: ChatClient): number[] {
  const seqs: number[] = [];
  chat.on("message", (m) => seqs.push(m.seq));
  return seqs;
}

/** The newest client's socket, welcomed and caught up with an empty history. */
async function live(): Promise<FakeSocket> {
  await vi.advanceTimersByTimeAsync(0);
  const ws = FakeSocket.last;
  ws.receive(welcome(ann1, 0, 0));
  ws.receive(history([], [], 0));
  return ws;
}
