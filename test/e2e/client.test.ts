import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { createServer, connect as tcpConnect, type Server, type Socket } from "node:net";
import { ChatClient, ChatError, type ChangeFrame, type ChatEvents, type MessageFrame, type MessagePage } from "edge-chat/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signToken } from "../../src/auth/grant";
import { waitFor } from "../support/frames";
import { ONE_ADDRESS_FOR_ALL, startDevServer, type DevServer } from "../support/e2e/wrangler";
import { WsClient } from "../support/e2e/ws-client";

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
  // forgiven, so that a token that lasts seconds expires in a test; and the user list
  // comes in pages of three.
  server = await startDevServer({
    vars: {
      ...ONE_ADDRESS_FOR_ALL,
      ROOM_SECRET: SECRET,
      RATE_LIMIT_PER_10S: String(RATE_LIMIT),
      HISTORY_LIMIT: String(HISTORY_LIMIT),
      PRESENCE_LIST_LIMIT: "3",
      TICK_SECONDS: "1",
      AUTH_CLOCK_SKEW_SECONDS: "0",
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
function collect(chat: ChatClient): MessageFrame[] {
  const got: MessageFrame[] = [];
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

async function received(got: MessageFrame[], count: number, who: string): Promise<void> {
  await waitFor(
    () => got.length >= count,
    () => `${count} messages at ${who}; it has ${got.length}: ${got.map((m) => m.text).join(" ")}`,
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
    const got: MessageFrame[] = [];
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
      expect(await storedTexts(room)).toEqual(lines);
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

describe("npm run chat against wrangler dev", () => {
  it("lets two terminals and a ws client chat, with /who and /name", async () => {
    const room = "terminal-chat";
    const ann = terminal([room, "--name", "ann", "--server", server.url]);
    let bob: Terminal | undefined;
    try {
      await ann.line(/^Welcome to terminal-chat, ann! Online/);
      bob = terminal([room, "--name", "bob", "--server", server.url]);
      await bob.line(/^Welcome to terminal-chat, bob! Online \(2\): ann, bob$/);
      const wes = await WsClient.open(`${wsUrl(room)}?name=wes`);
      await wes.next("welcome");

      ann.type("hello from ann");
      await bob.line(/^\[\d\d:\d\d\] ann: hello from ann$/);
      expect(await wes.skipTo("message")).toMatchObject({ text: "hello from ann", user: { name: "ann" } });
      wes.send("hello terminals\nsecond line");
      await ann.line(/^\[\d\d:\d\d\] wes: hello terminals$/);
      await ann.line(/^ {2}second line$/);
      await bob.line(/^\[\d\d:\d\d\] wes: hello terminals$/);

      bob.type("/who");
      await bob.line(/^Online \(3\): ann, bob, wes$/);
      ann.type("/name annie");
      await ann.line(/^You are now known as annie\.$/);
      await bob.line(/^ann is now known as annie\.$/);
      ann.type("//slash at the start");
      await bob.line(/^\[\d\d:\d\d\] annie: \/slash at the start$/);
      wes.ws.close();

      ann.end();
      bob.end();
      expect(await ann.exited()).toBe(0);
      expect(await bob.exited()).toBe(0);
      // Each message once, whatever else was printed.
      expect(bob.lines().filter((l) => l.endsWith("ann: hello from ann"))).toHaveLength(1);
    } finally {
      ann.kill();
      bob?.kill();
    }
  });

  it("runs a script through a server restart: every line sent once, every one acknowledged, exit 0", async () => {
    const room = "terminal-script";
    const bot = terminal([room, "--name", "bot", "--server", server.url]);
    try {
      bot.type("first");
      await bot.line(/^\[\d\d:\d\d\] bot: first$/);
      const restarted = server.restart();
      await bot.line(/^\* connection lost \(.+\); reconnecting in \d+ s$/);
      bot.type("second");
      bot.end();
      await restarted;
      expect(await bot.exited(RESTART_DEADLINE_MS)).toBe(0);
      expect(bot.lines().filter((l) => /bot: (first|second)$/.test(l))).toEqual([expect.stringMatching(/first$/), expect.stringMatching(/second$/)]);
      expect(bot.lines()).toContain("* reconnected");
    } finally {
      bot.kill();
    }
  });

  it("exits 1 when a line was refused, and 2 with the reason when the room refuses it or the URL is bad", async () => {
    // 2001 characters: too long to send.
    const long = terminal(["terminal-refused", "--name", "bot", "--server", server.url]);
    long.type("x".repeat(2001));
    long.type("fine");
    long.end();
    expect(await long.exited()).toBe(1);
    expect(long.lines()).toContain(`! not sent (messages are at most 2000 characters): ${"x".repeat(2001)}`);
    expect(long.lines().some((l) => l.endsWith("bot: fine"))).toBe(true);

    const private_ = terminal(["private-terminal", "--server", server.url]);
    private_.end();
    expect(await private_.exited()).toBe(2);
    expect(private_.lines()).toContain("* cannot join: this room needs a ?token= from the app or the room's owner");

    const bad = terminal(["ftp://example.com/rooms/x"]);
    bad.end();
    expect(await bad.exited()).toBe(2);
    expect(bad.errors()).toMatch(/^not a room's URL/);
  });

  it(
    "paces a script of 250 lines to the room's limit: every line stored once, in order, exit 0",
    async () => {
      const room = "terminal-paced";
      const lines = Array.from({ length: 250 }, (_, i) => String(i + 1));
      const bot = terminal([room, "--name", "bot", "--server", server.url]);
      try {
        for (const line of lines) bot.type(line);
        bot.end();
        // A burst of 99, then ten a second: about 15 s on any machine, and not one frame refused.
        expect(await bot.exited(RESTART_DEADLINE_MS)).toBe(0);
        expect(bot.lines().filter((l) => l.startsWith("!"))).toEqual([]);
        expect(await storedTexts(room)).toEqual(lines);
      } finally {
        bot.kill();
      }
    },
    RESTART_DEADLINE_MS + 30_000,
  );

  it("leaves on /quit once what was sent is stored, sends nothing typed after it, and needs no end of input", async () => {
    const room = "terminal-quit";
    const ann = terminal([room, "--name", "ann", "--server", server.url]);
    try {
      await ann.line(/^Welcome to terminal-quit, ann!/);
      ann.type("before quit");
      ann.type("/quit");
      ann.type("after quit");
      expect(await ann.exited()).toBe(0);
      expect(await storedTexts(room)).toEqual(["before quit"]);
    } finally {
      ann.kill();
    }
  });

  it("prints its usage for --help and exits 0", async () => {
    const help = terminal(["--help"]);
    expect(await help.exited()).toBe(0);
    expect(help.lines()[0]).toMatch(/^usage: npm run chat -- <room URL or room name>/);
    expect(help.lines()).toContain("  -h, --help               this text");
  });

  it("gives up with the reason and exit 2 when a script cannot reach the server", async () => {
    const lost = terminal(["lobby", "--name", "bot", "--server", "http://127.0.0.1:1"]);
    lost.type("hello?");
    lost.end();
    // It gives up 15 s after it starts, by its own clock; the rest of this wait is for npm and Node to start.
    expect(await lost.exited(45_000)).toBe(2);
    expect(lost.lines()).toContain("! not sent (the session was closed): hello?");
    expect(lost.lines().at(-1)).toMatch(/^\* gave up connecting after 15 s: cannot reach 127\.0\.0\.1:1\b/);
  }, 60_000);
});

interface Terminal {
  type(line: string): void;
  end(): void;
  /** Waits for a line printed after the last one waited for, and returns it. */
  line(pattern: RegExp): Promise<string>;
  lines(): string[];
  errors(): string;
  exited(timeoutMs?: number): Promise<number | null>;
  kill(): void;
}

/** `npm run -s chat -- <args>` with piped stdin and stdout, as a script would run it. */
function terminal(args: string[]): Terminal {
  const child: ChildProcessWithoutNullStreams = spawn("npm", ["run", "-s", "chat", "--", ...args], { env: { ...process.env, TZ: "UTC" } });
  let out = "";
  let err = "";
  let read = 0;
  let code: number | null | undefined;
  child.stdout.on("data", (chunk: Buffer) => (out += chunk));
  child.stderr.on("data", (chunk: Buffer) => (err += chunk));
  child.on("exit", (exitCode) => (code = exitCode));
  const lines = () => out.split("\n").slice(0, -1);
  return {
    type: (line) => child.stdin.write(`${line}\n`),
    end: () => child.stdin.end(),
    lines,
    errors: () => err,
    async line(pattern) {
      let found = -1;
      await waitFor(
        () => {
          found = lines().findIndex((l, i) => i >= read && pattern.test(l));
          return found >= 0;
        },
        () => `a line matching ${pattern} from npm run chat -- ${args.join(" ")}; it printed:\n${out}${err}`,
        RESTART_DEADLINE_MS,
      );
      read = found + 1;
      return lines()[found]!;
    },
    async exited(timeoutMs = 30_000) {
      await waitFor(
        () => code !== undefined,
        () => `npm run chat -- ${args.join(" ")} to exit; it printed:\n${out}${err}`,
        timeoutMs,
      );
      return code!;
    },
    kill: () => {
      if (code === undefined) child.kill();
    },
  };
}

/** What a TCP proxy to the dev server lets a test do to its connections, as a network would. */
interface Proxy {
  port: number;
  /** Drops every connection, as a network that drops would. */
  cut(): void;
  /** Keeps what clients send from reaching the server, until `release()`; what the server sends still arrives. */
  hold(): void;
  release(): void;
  /** Cuts every connection and drops new ones at once, as a network that is gone; until `admit()`. */
  refuse(): void;
  admit(): void;
  connections(): number;
  close(): void;
}

async function tcpProxy(port: string): Promise<Proxy> {
  const open = new Set<Socket>();
  let connections = 0;
  let refusing = false;
  let held: Array<() => void> | null = null;
  const proxy: Server = createServer((downstream) => {
    if (refusing) return void downstream.destroy();
    connections++;
    const upstream = tcpConnect(Number(port), "127.0.0.1");
    for (const socket of [downstream, upstream]) {
      open.add(socket);
      socket.on("close", () => open.delete(socket));
      socket.on("error", () => socket.destroy());
    }
    downstream.on("data", (chunk: Buffer) => {
      if (held === null) upstream.write(chunk);
      else held.push(() => upstream.write(chunk));
    });
    upstream.pipe(downstream);
    downstream.on("close", () => upstream.destroy());
    upstream.on("close", () => downstream.destroy());
  });
  await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  const cut = () => {
    for (const socket of open) socket.destroy();
  };
  return {
    port: (proxy.address() as { port: number }).port,
    cut,
    hold: () => {
      held ??= [];
    },
    release: () => {
      const writes = held ?? [];
      held = null;
      for (const write of writes) write();
    },
    refuse: () => {
      refusing = true;
      cut();
    },
    admit: () => {
      refusing = false;
    },
    connections: () => connections,
    close: () => {
      proxy.close();
      cut();
    },
  };
}

/** Every message a room keeps, oldest first, over HTTP. */
async function storedTexts(room: string): Promise<string[]> {
  const response = await fetch(`${server.url}/api/rooms/${room}/messages?limit=500`);
  return ((await response.json()) as MessagePage).messages.map((m) => m.text);
}
