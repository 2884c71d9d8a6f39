import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { createServer, connect as tcpConnect, type Server, type Socket } from "node:net";
import { ChatClient, ChatError, type ChatEvents, type MessageFrame } from "edge-chat/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signToken } from "../../src/grant";
import { waitFor } from "../frames";
import { ONE_ADDRESS_FOR_ALL, startDevServer, type DevServer } from "./wrangler";
import { WsClient } from "./ws-client";

const SECRET = "client-room-secret";
/** A restart of wrangler dev on a loaded machine takes a while; every wait across one allows this long. */
const RESTART_DEADLINE_MS = 90_000;

let server: DevServer;
const clients: ChatClient[] = [];

beforeAll(async () => {
  // Its own wrangler dev, since tests here restart it. Every client is 127.0.0.1, so the
  // per-address limits are lifted; writers here send bursts of up to 100 frames; and
  // the alarm runs every second, so that a token that lasts seconds expires in a test.
  server = await startDevServer({ vars: { ...ONE_ADDRESS_FOR_ALL, ROOM_SECRET: SECRET, RATE_LIMIT_PER_10S: "1000", TICK_SECONDS: "1" } });
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
  await waitFor(() => chat.state === state, () => `the client to be ${state}; it went through ${states.join(", ") || "nothing"}, now ${chat.state}`, timeoutMs);
}

async function received(got: MessageFrame[], count: number, who: string): Promise<void> {
  await waitFor(() => got.length >= count, () => `${count} messages at ${who}; it has ${got.length}: ${got.map((m) => m.text).join(" ")}`, RESTART_DEADLINE_MS);
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
    await waitFor(() => writer.state !== "open", () => `the writer to notice the restart; it is ${writer.state}`, RESTART_DEADLINE_MS);
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
      // Cut as the tenth ack is read: the rest are sent, and stored or not, but their acks are lost.
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
    for (const text of texts("s", 100)) writer.send(text);
    await received(got, 100, "the slow reader");
    expect(got.map((m) => m.text)).toEqual(texts("s", 100));
    expect(new Set(got.map((m) => m.seq)).size).toBe(100);
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
    await waitFor(() => tokens.count() >= 2 && kim.state === "open", () => `a second token and an open session; states so far: ${states.join(", ")}`);
    expect(states).not.toContain("closed");
    expect(await kim.send("still here")).toBeGreaterThan(0);
    // Or it renews in place, before the room closes anything.
    const exp = Math.floor(Date.now() / 1000) + 600;
    expect(await kim.renew(await signToken(SECRET, { room, name: "kim", sub: "kim-sub", exp }))).toBe(exp);
  });

  it("stops, says why, and rejects what it had not sent when a moderator kicks it", async () => {
    const room = "client-kicked";
    const kim = client({ url: wsUrl(room), name: "kim" });
    const refusals: Array<ChatEvents["refused"]> = [];
    kim.on("refused", (r) => refusals.push(r));
    await until(kim, "open");
    // A socket that never spoke sees a close from wrangler dev ten seconds late (abuse.test.ts).
    await kim.send("hello");
    const token = await signToken(SECRET, { room, name: "mod", role: "moderator", exp: Math.floor(Date.now() / 1000) + 600 });
    const mod = client({ url: wsUrl(room), token });
    await until(mod, "open");
    expect(await mod.moderate("kick", kim.you!.id)).toMatchObject({ action: "kick", user: { name: "kim" } });
    await until(kim, "closed");
    expect(refusals).toEqual([{ refusal: expect.objectContaining({ code: "kicked" }), retryInMs: null }]);
    await expect(kim.send("still here?")).rejects.toMatchObject({ code: "kicked" });
    await expect(kim.who()).rejects.toBeInstanceOf(ChatError);
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
      await ann.line(/^  second line$/);
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
      await bot.line(/^\* connection lost; reconnecting in \d+ s$/);
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
        () => (found = lines().findIndex((l, i) => i >= read && pattern.test(l))) >= 0,
        () => `a line matching ${pattern} from npm run chat -- ${args.join(" ")}; it printed:\n${out}${err}`,
        RESTART_DEADLINE_MS,
      );
      read = found + 1;
      return lines()[found]!;
    },
    async exited(timeoutMs = 30_000) {
      await waitFor(() => code !== undefined, () => `npm run chat -- ${args.join(" ")} to exit; it printed:\n${out}${err}`, timeoutMs);
      return code!;
    },
    kill: () => {
      if (code === undefined) child.kill();
    },
  };
}

/** A TCP proxy to the dev server whose connections a test can cut, as a network that drops would. */
async function tcpProxy(port: string): Promise<{ port: number; cut(): void; connections(): number; close(): void }> {
  const open = new Set<Socket>();
  let connections = 0;
  const proxy: Server = createServer((downstream) => {
    connections++;
    const upstream = tcpConnect(Number(port), "127.0.0.1");
    for (const socket of [downstream, upstream]) {
      open.add(socket);
      socket.on("close", () => open.delete(socket));
      socket.on("error", () => socket.destroy());
    }
    downstream.pipe(upstream).pipe(downstream);
    downstream.on("close", () => upstream.destroy());
    upstream.on("close", () => downstream.destroy());
  });
  await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  return {
    port: (proxy.address() as { port: number }).port,
    cut: () => {
      for (const socket of open) socket.destroy();
    },
    connections: () => connections,
    close: () => {
      proxy.close();
      for (const socket of open) socket.destroy();
    },
  };
}
