import { ChatClient, ChatError, type ChangeFrame, type ChatEvents, type ChatMessage, type ReactionsFrame, type TypingUsers } from "edge-chat/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signToken } from "../../src/auth/grant";
import type { WireFrame } from "../../src/protocol";
import { waitFor } from "../support/frames";
import { ONE_ADDRESS_FOR_ALL, startDevServer, type DevServer } from "../support/e2e/wrangler";
import { WsClient } from "../support/e2e/ws-client";
import { storedTexts } from "../support/e2e/rooms";
import { tcpProxy } from "../support/e2e/tcp-proxy";

const SECRET = "client-room-secret";
/** A restart of wrangler dev on a loaded machine takes a while; every wait across one allows this long. */
const RESTART_DEADLINE_MS = 90_000;

let server: DevServer;
const clients: ChatClient[] = [];

/** Frames a socket may send per 10 s here: ten times the default, so that pacing to it is quick to test, and still pacing. */
const RATE_LIMIT = 200;
/** Messages a room keeps here, so that a client away for a few hundred misses some for good. */
const HISTORY_LIMIT = 300;

beforeAll(async () => {
  // Its own wrangler dev, since tests here restart it. Every client is 127.0.0.1, so the
  // per-address limits are lifted; the alarm runs every second and no clock skew is
  // forgiven, so that a token that lasts seconds expires in a test; the user list
  // comes in pages of three; and the room batches however quiet it is.
  server = await startDevServer({
    vars: {
      ...ONE_ADDRESS_FOR_ALL,
      ROOM_SECRET: SECRET,
      RATE_LIMIT_PER_10S: String(RATE_LIMIT),
      HISTORY_LIMIT: String(HISTORY_LIMIT),
      PRESENCE_LIST_LIMIT: "3",
      TICK_SECONDS: "1",
      AUTH_CLOCK_SKEW_SECONDS: "0",
      // Batches whenever two frames for a socket that asked (every ChatClient) come within a window: every test here goes through unpacking.
      BATCH_ABOVE: "0",
    },
  });
}, 120_000);

afterAll(async () => {
  for (const client of clients) client.close();
  await server?.stop();
});

const wsUrl = (room: string) => `${server.url.replace("http", "ws")}/rooms/${room}`;

function client(options: ConstructorParameters<typeof ChatClient>[0]): ChatClient {
  const chat = new ChatClient(options);
  clients.push(chat);
  return chat;
}

/** Every message a client is handed, in the order it is handed them. */
function collect(chat: ChatClient): ChatMessage[] {
  const got: ChatMessage[] = [];
  chat.on("message", (m) => got.push(m));
  return got;
}

async function until(chat: ChatClient, state: ChatEvents["state"]["state"], timeoutMs = RESTART_DEADLINE_MS): Promise<void> {
  const states: string[] = [];
  chat.on("state", ({ state }) => states.push(state));
  await waitFor(
    () => chat.state === state,
    () => `the client to be ${state}; it went through ${states.join(", ") || "nothing"}, now ${chat.state}`,
    timeoutMs,
  );
}

async function received(got: ChatMessage[], count: number, who: string): Promise<void> {
  await waitFor(
    () => got.length >= count,
    () => `${count} messages at ${who}; it has ${got.length}: ${got.map((m) => m.text).join(" ")}`,
    RESTART_DEADLINE_MS,
  );
}

/** Every reaction summary a client is handed, in the order it is handed them. */
function reactionsAt(chat: ChatClient): ReactionsFrame[] {
  const got: ReactionsFrame[] = [];
  chat.on("change", (c) => {
    if (c.type === "reactions") got.push(c);
  });
  return got;
}

async function summaries(got: ReactionsFrame[], count: number, who: string): Promise<void> {
  await waitFor(
    () => got.length >= count,
    () => `${count} reaction summaries at ${who}; it has ${JSON.stringify(got)}`,
    RESTART_DEADLINE_MS,
  );
}

/** A summary's emoji and counts, in the order of the emoji, and whose the ids are, by `isYou`. */
function tally(frame: ReactionsFrame, of: ChatClient): Array<[string, number, boolean[]]> {
  return frame.reactions.map(({ emoji, count, users }): [string, number, boolean[]] => [emoji, count, users.map((id) => of.isYou(id))]).sort();
}

/** Every `typing` event a client emits, in order. */
function typingAt(chat: ChatClient): TypingUsers[] {
  const got: TypingUsers[] = [];
  chat.on("typing", (t) => got.push(t));
  return got;
}

/** Who a typing event names, as `ann, bob` (and how many in all, when more). */
const typers = ({ users, count }: TypingUsers) => `${users.map((u) => u.name).join(", ")}${count > users.length ? ` +${count - users.length}` : ""}`;

/** Waits until the last typing event a client emitted names `names` ("" for nobody); `meanwhile` runs at each look, as keystrokes would. */
async function typingSeen(got: TypingUsers[], names: string, who: string, meanwhile = () => {}): Promise<void> {
  await waitFor(
    () => {
      meanwhile();
      return got.length > 0 && typers(got.at(-1)!) === names;
    },
    () => `${who} to see ${names === "" ? "nobody" : names} typing; it saw ${JSON.stringify(got.map(typers))}`,
    RESTART_DEADLINE_MS,
  );
}

/** A token function for `name` in `room`, each token lasting `seconds`, that counts how often it is asked. */
function tokenSource(room: string, name: string, seconds: number): { next: () => Promise<string>; count: () => number } {
  let count = 0;
  return {
    next: () => {
      count++;
      return signToken(SECRET, { room, name, sub: `${name}-sub`, exp: Math.floor(Date.now() / 1000) + seconds });
    },
    count: () => count,
  };
}

const texts = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

describe("edge-chat/client against wrangler dev", () => {
  it("loses and repeats nothing through a server restart in the middle of a stream, resolves every send once, keeps a new name, and asks for a fresh token before each connection", async () => {
    const room = "client-restart";
    const tokens = tokenSource(room, "reader", 600);
    const reader = client({ url: wsUrl(room), token: tokens.next });
    const got = collect(reader);
    const writer = client({ url: wsUrl(room), name: "writer" });
    await until(reader, "open");
    await until(writer, "open");
    // A new name outlives the connection it was given on.
    expect(await writer.rename("scribe")).toMatchObject({ name: "scribe" });

    const resolutions = new Map<string, number[]>();
    const send = (text: string) =>
      writer.send(text).then((seq) => {
        resolutions.set(text, [...(resolutions.get(text) ?? []), seq]);
        return seq;
      });
    const all = texts("m", 60);
    // Twenty on their way when the server goes, twenty sent while it is gone, twenty once it is back.
    const sends = all.slice(0, 20).map(send);
    const restarted = server.restart();
    await waitFor(
      () => writer.state !== "open",
      () => `the writer to notice the restart; it is ${writer.state}`,
      RESTART_DEADLINE_MS,
    );
    sends.push(...all.slice(20, 40).map(send));
    await restarted;
    sends.push(...all.slice(40).map(send));
    const seqs = await Promise.all(sends);

    expect(new Set(seqs).size).toBe(60);
    expect([...resolutions.values()].every((r) => r.length === 1)).toBe(true);
    await received(got, 60, "the reader");
    expect(got.map((m) => m.text)).toEqual(texts("m", 60));
    expect(got.map((m) => m.seq)).toEqual([...seqs].sort((a, b) => a - b));
    expect(tokens.count()).toBeGreaterThanOrEqual(2);
    expect(got.every((m) => m.user.name === "scribe")).toBe(true);
    expect(writer.you?.name).toBe("scribe");
    expect(reader.you).toMatchObject({ name: "reader", verified: true });
  });

  it("loses and repeats nothing when its own socket is cut while it sends", async () => {
    const room = "client-cut";
    const proxy = await tcpProxy(new URL(server.url).port);
    try {
      const writer = client({ url: `ws://127.0.0.1:${proxy.port}/rooms/${room}`, name: "writer" });
      const own = collect(writer);
      const reader = client({ url: wsUrl(room), name: "reader" });
      const got = collect(reader);
      await until(writer, "open");
      await until(reader, "open");
      let acked = 0;
      // Cut as the tenth ack is read: the next message is on its way, and stored or not, but its ack is lost.
      const sends = texts("c", 50).map((text) =>
        writer.send(text).then((seq) => {
          if (++acked === 10) proxy.cut();
          return seq;
        }),
      );
      const seqs = await Promise.all(sends);
      expect(new Set(seqs).size).toBe(50);
      await received(got, 50, "the reader");
      await received(own, 50, "the writer");
      expect(got.map((m) => m.text)).toEqual(texts("c", 50));
      expect(own.map((m) => m.text)).toEqual(texts("c", 50));
      expect(proxy.connections()).toBeGreaterThanOrEqual(2);
    } finally {
      proxy.close();
    }
  });

  it("gives a slow consumer every message once, in order", async () => {
    const room = "client-slow";
    // Pings every 50 ms with a 20 ms pong deadline: a consumer that holds the event loop must not read its own slowness as a dead socket.
    const reader = client({ url: wsUrl(room), name: "slow", pingEveryMs: 50, pongWithinMs: 20 });
    const got: ChatMessage[] = [];
    reader.on("message", (m) => {
      const busyUntil = performance.now() + 10;
      while (performance.now() < busyUntil);
      got.push(m);
    });
    await until(reader, "open");
    const writer = await WsClient.open(`${wsUrl(room)}?name=fast`);
    await writer.next("welcome");
    // A burst well within the room's limit, as fast as a socket can send it.
    const burst = 90;
    for (const text of texts("s", burst)) writer.send(text);
    await received(got, burst, "the slow reader");
    expect(got.map((m) => m.text)).toEqual(texts("s", burst));
    expect(new Set(got.map((m) => m.seq)).size).toBe(burst);
    writer.ws.close();
  });

  it("hands an app the same messages in the same order as a socket that takes no batches, through bursts the room batches", async () => {
    const room = "client-batched";
    const chat = client({ url: wsUrl(room), name: "app" });
    const got = collect(chat);
    await until(chat, "open");
    const plain = await WsClient.open(`${wsUrl(room)}?name=plain`);
    const batched = await WsClient.open(`${wsUrl(room)}?name=batched&batch=1`);
    const writers = await Promise.all(["w0", "w1", "w2", "w3"].map((name) => WsClient.open(`${wsUrl(room)}?name=${name}`)));
    const unpacked = (c: WsClient) => c.frames.map((f) => JSON.parse(f) as WireFrame).flatMap((f) => (f.type === "batch" ? f.frames : [f]));
    const messagesAt = (c: WsClient) => unpacked(c).flatMap((f) => (f.type === "message" ? [`${f.seq} ${f.text}`] : []));
    // The batched socket's welcome and history may come in one batch, so it is read unpacked.
    await waitFor(
      () => [plain, batched, ...writers].every((c) => unpacked(c).some((f) => f.type === "history")),
      () => `every socket's history; they have ${[plain, batched, ...writers].map((c) => c.frames.length).join(", ")} frames`,
    );
    // Four sockets sending at once, as fast as they can: the room interleaves them as it stores them.
    writers.forEach((writer, w) => {
      for (const text of texts(`w${w}-`, 40)) writer.send(text);
    });
    await waitFor(
      () => got.length >= 160 && messagesAt(plain).length >= 160 && messagesAt(batched).length >= 160,
      () =>
        `160 messages at the app and both sockets; the app has ${got.length}, the plain one ${messagesAt(plain).length}, the batched one ${messagesAt(batched).length}`,
      30_000,
    );
    expect(got.map((m) => `${m.seq} ${m.text}`)).toEqual(messagesAt(plain));
    expect(messagesAt(batched)).toEqual(messagesAt(plain));
    expect(plain.frames.some((f) => f.startsWith('{"type":"batch"'))).toBe(false);
    for (const c of [plain, batched, ...writers]) c.ws.close();
  });

  it("comes back with a fresh token when the room closes its socket for an expired one", async () => {
    const room = "client-short-tokens";
    // Each token lasts two seconds; the room's alarm, every second, closes the socket once it has expired.
    const tokens = tokenSource(room, "kim", 2);
    const kim = client({ url: wsUrl(room), token: tokens.next });
    const states: string[] = [];
    kim.on("state", ({ state }) => states.push(state));
    await until(kim, "open");
    // A socket that never spoke sees a close from wrangler dev ten seconds late (abuse.test.ts).
    await kim.send("hello");
    await waitFor(
      () => tokens.count() >= 2 && kim.state === "open",
      () => `a second token and an open session; states so far: ${states.join(", ")}`,
    );
    expect(states).not.toContain("closed");
    expect(await kim.send("still here")).toBeGreaterThan(0);
    // Or it renews in place, before the room closes anything.
    const exp = Math.floor(Date.now() / 1000) + 600;
    expect(await kim.renew(await signToken(SECRET, { room, name: "kim", sub: "kim-sub", exp }))).toBe(exp);
  });

  it("stops, says why, and rejects what it had pending when a moderator kicks it", async () => {
    const room = "client-kicked";
    const proxy = await tcpProxy(new URL(server.url).port);
    try {
      const kim = client({ url: `ws://127.0.0.1:${proxy.port}/rooms/${room}`, name: "kim" });
      const refusals: Array<ChatEvents["refused"]> = [];
      kim.on("refused", (r) => refusals.push(r));
      await until(kim, "open");
      // A socket that never spoke sees a close from wrangler dev ten seconds late (abuse.test.ts).
      await kim.send("hello");
      // What kim sends from now on stays in the proxy: this message is pending when the kick comes.
      proxy.hold();
      let lateError: unknown;
      kim.send("still here?").catch((error: unknown) => (lateError = error));
      expect(kim.pending.map((p) => p.text)).toEqual(["still here?"]);
      const token = await signToken(SECRET, { room, name: "mod", role: "moderator", exp: Math.floor(Date.now() / 1000) + 600 });
      const mod = await WsClient.open(`${wsUrl(room)}?token=${token}`);
      await mod.next("welcome");
      mod.send({ type: "kick", user: kim.you!.id, id: "k-1" });
      expect(await mod.skipTo("moderated")).toMatchObject({ action: "kick", user: { name: "kim" } });
      // The room has closed kim's socket; what was held reaches a socket the room no longer reads.
      proxy.release();
      await until(kim, "closed");
      await waitFor(
        () => lateError !== undefined,
        () => `the pending send to be rejected; kim still has ${JSON.stringify(kim.pending)}`,
      );
      expect(lateError).toMatchObject({ code: "kicked" });
      expect(refusals).toEqual([{ refusal: expect.objectContaining({ code: "kicked" }), retryInMs: null }]);
      await expect(kim.send("still here?")).rejects.toMatchObject({ code: "kicked" });
      await expect(kim.who()).rejects.toBeInstanceOf(ChatError);
      mod.ws.close();
    } finally {
      proxy.close();
    }
  });

  it("edits and deletes its own message, each change reaching another client once", async () => {
    const room = "client-changes";
    const ann = client({ url: wsUrl(room), name: "ann" });
    const bob = client({ url: wsUrl(room), name: "bob" });
    const changes: ChangeFrame[] = [];
    bob.on("change", (c) => changes.push(c));
    await until(ann, "open");
    await until(bob, "open");
    const seq = await ann.send("teh typo");
    const edited = await ann.edit(seq, "the typo, fixed");
    expect(edited).toBeGreaterThan(seq);
    const deleted = await ann.delete(seq);
    expect(deleted).toBeGreaterThan(edited);
    await waitFor(
      () => changes.length >= 2,
      () => `an edit and a delete at bob; he has ${JSON.stringify(changes)}`,
    );
    expect(changes).toEqual([
      expect.objectContaining({ type: "edit", seq, change: edited, text: "the typo, fixed" }),
      expect.objectContaining({ type: "delete", seq, change: deleted }),
    ]);
    await expect(bob.edit(seq, "not mine")).rejects.toMatchObject({ code: expect.stringMatching(/^(forbidden|unknown_message)$/) });
  });

  it("replies, reacts and reads a thread between two clients, each change reaching both once, and marks the message that mentions its reader", async () => {
    const room = "client-conversation";
    const ann = client({ url: wsUrl(room), name: "ann" });
    const bob = client({ url: wsUrl(room), name: "bob" });
    const annGot = collect(ann);
    const annReactions = reactionsAt(ann);
    const bobReactions = reactionsAt(bob);
    await until(ann, "open");
    await until(bob, "open");
    const seq = await ann.send("lunch?");
    const reply = await bob.reply(seq, "@ann sure");
    await received(annGot, 2, "ann");
    expect(annGot[0]!.mentionsMe).toBe(false);
    expect(annGot[1]).toMatchObject({
      seq: reply,
      text: "@ann sure",
      replyTo: { seq, user: { name: "ann" }, text: "lunch?" },
      mentions: [{ id: ann.you!.id, name: "ann" }],
      mentionsMe: true,
    });

    const bobReacted = await bob.react(seq, "👍");
    const annReacted = await ann.react(seq, "👍");
    expect(annReacted).toBeGreaterThan(bobReacted);
    const bobTookBack = await bob.unreact(seq, "👍");
    await summaries(annReactions, 3, "ann");
    await summaries(bobReactions, 3, "bob");
    for (const [got, who] of [
      [annReactions, ann],
      [bobReactions, bob],
    ] as const) {
      expect(got.map((r) => [r.seq, r.change, r.emoji, r.removed ?? false])).toEqual([
        [seq, bobReacted, "👍", false],
        [seq, annReacted, "👍", false],
        [seq, bobTookBack, "👍", true],
      ]);
      // Each tells its own reaction from the other's.
      const [thumbs] = got[1]!.reactions;
      expect(thumbs).toMatchObject({ emoji: "👍", count: 2 });
      expect(thumbs!.users.filter((id) => who.isYou(id))).toEqual([who.you!.id]);
      expect(tally(got[2]!, who)).toEqual([["👍", 1, [who === ann]]]);
    }

    const thread = await bob.thread(seq);
    expect(thread).toMatchObject({ type: "thread", seq, root: { seq, text: "lunch?", replies: 1 }, more: false });
    expect(thread.messages.map((m) => [m.seq, m.text])).toEqual([[reply, "@ann sure"]]);
    await expect(bob.react(999_999, "👍")).rejects.toMatchObject({ code: "unknown_message" });
    await expect(bob.react(seq, "not one emoji")).rejects.toMatchObject({ code: "bad_emoji" });
    await expect(bob.thread(999_999)).rejects.toMatchObject({ code: "unknown_message" });
  });

  it("learns on its return the reactions and replies made while it was away, sends the reaction it made meanwhile once, and knows each id it had", async () => {
    const room = "client-away";
    const proxy = await tcpProxy(new URL(server.url).port);
    try {
      // A token's account: a mention finds her while she is away.
      const tokens = tokenSource(room, "ann", 600);
      const ann = client({ url: `ws://127.0.0.1:${proxy.port}/rooms/${room}`, token: tokens.next });
      const bob = client({ url: wsUrl(room), name: "bob" });
      const annGot = collect(ann);
      const annReactions = reactionsAt(ann);
      await until(ann, "open");
      await until(bob, "open");
      const seq = await ann.send("vote here");
      await bob.react(seq, "👍");
      await summaries(annReactions, 1, "ann");
      const before = ann.you!.id;

      proxy.refuse();
      await waitFor(
        () => ann.state !== "open",
        () => `ann to notice she is offline; she is ${ann.state}`,
      );
      const own = ann.react(seq, "👀");
      await bob.react(seq, "🎉");
      await bob.unreact(seq, "👍");
      const reply = await bob.reply(seq, "@ann still there?");
      proxy.admit();
      ann.wake();
      const ownChange = await own;
      await until(ann, "open");
      // A resume brings each message's summary as it is now, not each step that led to it.
      await waitFor(
        () => annReactions.at(-1)?.reactions.length === 2,
        () => `ann to learn of 🎉 and her own 👀; she has ${JSON.stringify(annReactions)}`,
        RESTART_DEADLINE_MS,
      );
      await received(annGot, 2, "ann");

      expect(ann.you!.id).not.toBe(before);
      expect([ann.isYou(before), ann.isYou(ann.you!.id), ann.isYou(bob.you!.id)]).toEqual([true, true, false]);
      const changes = annReactions.map((r) => r.change);
      expect(changes).toEqual([...new Set(changes)].sort((a, b) => a - b));
      expect(changes).toContain(ownChange);
      expect(tally(annReactions.at(-1)!, ann)).toEqual([
        ["🎉", 1, [false]],
        ["👀", 1, [true]],
      ]);
      expect(annGot[1]).toMatchObject({ seq: reply, replyTo: { seq, text: "vote here" }, mentionsMe: true });
      // Her reaction was stored once, though it was sent after a reconnect.
      expect((await bob.thread(seq)).root.reactions?.find((r) => r.emoji === "👀")?.count).toBe(1);
    } finally {
      proxy.close();
    }
  });

  it("shows each client who else is typing until they stop or send, nobody once its connection drops, and on its return who still types", async () => {
    const room = "client-typing";
    const proxy = await tcpProxy(new URL(server.url).port);
    try {
      const ann = client({ url: `ws://127.0.0.1:${proxy.port}/rooms/${room}`, name: "ann" });
      const bob = client({ url: wsUrl(room), name: "bob" });
      const annSaw = typingAt(ann);
      const bobSaw = typingAt(bob);
      await until(ann, "open");
      await until(bob, "open");

      ann.typing();
      await typingSeen(bobSaw, "ann", "bob");
      ann.typing(false);
      await typingSeen(bobSaw, "", "bob");
      ann.typing();
      await typingSeen(bobSaw, "ann", "bob");
      await ann.send("done typing");
      await typingSeen(bobSaw, "", "bob");
      // The room told ann too, each time: she never sees herself.
      expect(annSaw.length).toBeGreaterThan(0);
      expect(annSaw.map(typers)).toEqual(annSaw.map(() => ""));

      // bob keeps typing, as keystrokes would, while ann's connection is cut and comes back.
      await typingSeen(annSaw, "bob", "ann", () => bob.typing());
      const cutAt = annSaw.length;
      proxy.cut();
      await waitFor(
        () => ann.state !== "open",
        () => `ann to notice the cut; she is ${ann.state}`,
      );
      await until(ann, "open");
      await typingSeen(annSaw, "bob", "ann", () => bob.typing());
      expect(annSaw.slice(cutAt).map(typers)).toEqual(["", "bob"]);
      expect(proxy.connections()).toBe(2);
    } finally {
      proxy.close();
    }
  });

  it("keeps two devices of one account at one read position: one marks read, the other's readSeq and unread follow, and a third comes in with it", async () => {
    const room = "client-reads";
    const token = await signToken(SECRET, { room, name: "ann", sub: "ann-reads-sub", exp: Math.floor(Date.now() / 1000) + 600 });
    const phone = client({ url: wsUrl(room), token });
    const laptop = client({ url: wsUrl(room), token });
    const bob = client({ url: wsUrl(room), name: "bob" });
    const laptopReads: number[] = [];
    laptop.on("read", ({ seq }) => laptopReads.push(seq));
    await Promise.all([until(phone, "open"), until(laptop, "open"), until(bob, "open")]);
    for (const text of ["one", "two", "@ann three"]) await bob.send(text);
    const unread = (chat: ChatClient, count: number, who: string) =>
      waitFor(
        () => chat.unread === count,
        () => `${count} unread at ${who}; it has ${chat.unread}, read up to ${chat.readSeq}, with ${chat.lastSeq} handed over`,
      );
    await unread(phone, 3, "the phone");
    await unread(laptop, 3, "the laptop");
    phone.markRead();
    expect([phone.readSeq, phone.unread]).toEqual([phone.lastSeq, 0]);
    await unread(laptop, 0, "the laptop once the phone read");
    expect(laptop.readSeq).toBe(phone.readSeq);
    expect(laptopReads).toEqual([phone.readSeq]);

    const tablet = client({ url: wsUrl(room), token });
    const welcomed = new Promise<number>((resolve) => tablet.on("welcome", (w) => resolve(w.read)));
    await until(tablet, "open");
    expect(await welcomed).toBe(phone.readSeq);
    expect([tablet.readSeq, tablet.unread]).toEqual([phone.readSeq, 0]);
    await bob.send("four");
    await Promise.all([unread(phone, 1, "the phone"), unread(laptop, 1, "the laptop"), unread(tablet, 1, "the tablet")]);
  });

  it("lists an account's rooms with what it has not read, leaves one, and opens one direct conversation for two people, in which both talk", async () => {
    const room = "client-inbox";
    const exp = Math.floor(Date.now() / 1000) + 600;
    const annToken = await signToken(SECRET, { room: "*", name: "ann", sub: "ann-inbox-sub", exp });
    const bobToken = await signToken(SECRET, { room: "*", name: "bob", sub: "bob-inbox-sub", exp });
    const phone = client({ url: wsUrl(room), token: annToken });
    const laptop = client({ url: wsUrl(room), token: annToken });
    const bob = client({ url: wsUrl(room), token: bobToken });
    await Promise.all([until(phone, "open"), until(laptop, "open"), until(bob, "open")]);
    for (const text of ["one", "@ann two"]) await bob.send(text);
    const listed = async (token: string, name: string) => (await ChatClient.myRooms(server.url, token)).rooms.find((r) => r.room === name);
    expect(await listed(annToken, room)).toMatchObject({ room, read: 0, unread: 2, mentions: 1 });
    await waitFor(
      () => phone.unread === 2,
      () => `both messages at ann's phone; it has ${phone.unread} unread`,
    );
    phone.markRead();
    // The laptop hears of it once the room has stored it.
    await waitFor(
      () => laptop.readSeq === phone.readSeq,
      () => `the laptop to read up to ${phone.readSeq}; it has ${laptop.readSeq}`,
    );
    expect(await listed(annToken, room)).toMatchObject({ read: phone.readSeq, unread: 0, mentions: 0 });
    phone.close();
    laptop.close();
    await ChatClient.leaveRoom(server.url, annToken, room);
    expect(await listed(annToken, room)).toBeUndefined();

    const direct = await ChatClient.openDirect(server.url, annToken, "bob-inbox-sub");
    const same = await ChatClient.openDirect(server.url, bobToken, "ann-inbox-sub");
    expect(direct).toMatchObject({ wsUrl: wsUrl(direct.room), with: "bob-inbox-sub" });
    expect(same).toEqual({ ...direct, with: "ann-inbox-sub" });
    const annHere = client({ url: direct.wsUrl, token: annToken });
    const bobHere = client({ url: same.wsUrl, token: bobToken });
    const annGot = collect(annHere);
    const bobGot = collect(bobHere);
    await Promise.all([until(annHere, "open"), until(bobHere, "open")]);
    const seq = await annHere.send("just between us");
    await received(bobGot, 1, "bob");
    await bobHere.reply(seq, "indeed");
    await received(annGot, 2, "ann");
    expect(annGot.map((m) => [m.user.name, m.text])).toEqual([
      ["ann", "just between us"],
      ["bob", "indeed"],
    ]);
    expect(await listed(bobToken, direct.room)).toMatchObject({ with: "ann-inbox-sub", unread: 1 });

    const eve = client({ url: direct.wsUrl, token: await signToken(SECRET, { room: "*", name: "eve", sub: "eve-inbox-sub", exp }) });
    const refusals: Array<ChatEvents["refused"]> = [];
    eve.on("refused", (r) => refusals.push(r));
    await until(eve, "closed");
    expect(refusals).toEqual([{ refusal: expect.objectContaining({ status: 403, code: "forbidden" }), retryInMs: null }]);
    await expect(ChatClient.openDirect(server.url, annToken, "ann-inbox-sub")).rejects.toMatchObject({ name: "ChatError", code: "bad_to" });
    const oneRoom = await signToken(SECRET, { room, name: "ann", sub: "ann-inbox-sub", exp });
    await expect(ChatClient.myRooms(server.url, oneRoom)).rejects.toMatchObject({ name: "ChatError", code: "bad_token" });
  });

  it("finds a message by its words, in pages older than a seq, and refuses a query the room cannot read", async () => {
    const room = "client-search";
    const ann = client({ url: wsUrl(room), name: "ann" });
    const bob = client({ url: wsUrl(room), name: "bob" });
    await Promise.all([until(ann, "open"), until(bob, "open")]);
    const first = await ann.send("the quarterly numbers are in");
    await ann.send("lunch at noon?");
    const second = await ann.send("quarterly review on Friday");
    const found = await bob.search("quarterly");
    expect(found).toMatchObject({ type: "search", q: "quarterly", more: false });
    expect(found.results.map((r) => [r.seq, r.user.name, r.text])).toEqual([
      [second, "ann", "quarterly review on Friday"],
      [first, "ann", "the quarterly numbers are in"],
    ]);
    expect(found.results[0]!.snippet).toContain("[quarterly]");
    expect((await bob.search("quarterly", second)).results.map((r) => r.seq)).toEqual([first]);
    await expect(bob.search('"unclosed')).rejects.toMatchObject({ name: "ChatError", code: "bad_query", message: expect.stringMatching(/\S/) });
  });

  it("pages through the user list with who(after), each user once", async () => {
    const room = "client-who";
    // One after another, so that the list, in join order, is in this order.
    const everyone: ChatClient[] = [];
    for (const name of ["u1", "u2", "u3", "u4", "u5"]) {
      everyone.push(client({ url: wsUrl(room), name }));
      await until(everyone.at(-1)!, "open");
    }
    const first = await everyone[0]!.who();
    expect(first).toMatchObject({ online: 5, more: true });
    expect(first.users).toHaveLength(3);
    const second = await everyone[0]!.who(first.users.at(-1)!.id);
    expect(second).toMatchObject({ online: 5, more: false });
    expect([...first.users, ...second.users].map((u) => u.name)).toEqual(["u1", "u2", "u3", "u4", "u5"]);
  });

  it("says when messages missed while away are gone, and hands over those still kept, in order", async () => {
    const room = "client-gap";
    const proxy = await tcpProxy(new URL(server.url).port);
    try {
      const reader = client({ url: `ws://127.0.0.1:${proxy.port}/rooms/${room}`, name: "reader" });
      const got = collect(reader);
      let gaps = 0;
      reader.on("gap", () => gaps++);
      await until(reader, "open");
      const first = client({ url: wsUrl(room), name: "first" });
      const stored = collect(first);
      await first.send("before");
      await received(got, 1, "the reader");
      proxy.refuse();
      await waitFor(
        () => reader.state !== "open",
        () => `the reader to notice it is offline; it is ${reader.state}`,
      );
      // More than the room keeps, from four sockets at once, each within its rate limit.
      const missed = texts("g", HISTORY_LIMIT + 20);
      const writers = await Promise.all([0, 1, 2, 3].map((w) => WsClient.open(`${wsUrl(room)}?name=w${w}`)));
      const quarter = missed.length / 4;
      writers.forEach((writer, w) => {
        for (const text of missed.slice(w * quarter, (w + 1) * quarter)) writer.send(text);
      });
      const lastSeq = 1 + missed.length;
      await received(stored, lastSeq, "a client that stayed");
      proxy.admit();
      reader.wake();
      await received(got, 1 + HISTORY_LIMIT, "the reader");
      expect(gaps).toBe(1);
      const after = got.slice(1);
      expect(after).toHaveLength(HISTORY_LIMIT);
      expect(after.map((m) => m.seq)).toEqual(Array.from({ length: HISTORY_LIMIT }, (_, i) => lastSeq - HISTORY_LIMIT + 1 + i));
      for (const writer of writers) writer.ws.close();
    } finally {
      proxy.close();
    }
  });

  it(
    "paces 250 messages to the room's limit: none refused, all stored once, in order",
    async () => {
      const room = "client-paced";
      const writer = client({ url: wsUrl(room), name: "writer" });
      const refusals: string[] = [];
      writer.on("error", (e) => refusals.push(`${e.code}: ${e.message}`));
      await until(writer, "open");
      const lines = texts("p", 250);
      // A burst of 99, then ten a second: about 15 s. Each message goes once the one before is
      // answered, so the room never counts two closer together than the client did.
      const sends = lines.map((text) => writer.send(text));
      await waitFor(
        () => writer.pending.length === 0,
        () => `all 250 acknowledged; ${writer.pending.length} pending, refusals: ${refusals.join("; ")}`,
        RESTART_DEADLINE_MS,
      );
      const seqs = await Promise.all(sends);
      expect(refusals).toEqual([]);
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
      expect(await storedTexts(server, room)).toEqual(lines);
    },
    RESTART_DEADLINE_MS,
  );

  it("sends 30 messages queued while offline once back, each once, in order", async () => {
    const room = "client-offline";
    const proxy = await tcpProxy(new URL(server.url).port);
    try {
      const writer = client({ url: `ws://127.0.0.1:${proxy.port}/rooms/${room}`, name: "writer" });
      const reader = client({ url: wsUrl(room), name: "reader" });
      const got = collect(reader);
      await until(writer, "open");
      await until(reader, "open");
      proxy.refuse();
      await waitFor(
        () => writer.state !== "open",
        () => `the writer to notice it is offline; it is ${writer.state}`,
      );
      const sends = texts("q", 30).map((text) => writer.send(text));
      expect(writer.pending).toHaveLength(30);
      proxy.admit();
      writer.wake();
      await waitFor(
        () => writer.pending.length === 0,
        () => `every queued message acknowledged; ${writer.pending.length} pending, the writer ${writer.state}`,
        RESTART_DEADLINE_MS,
      );
      const seqs = await Promise.all(sends);
      expect(new Set(seqs).size).toBe(30);
      await received(got, 30, "the reader");
      expect(got.map((m) => m.text)).toEqual(texts("q", 30));
    } finally {
      proxy.close();
    }
  });
});
