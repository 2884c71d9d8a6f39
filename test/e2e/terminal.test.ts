import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { afterAll, beforeAll, describe, it } from "vitest";
import { signToken } from "../../src/auth/grant";
import { storedTexts } from "../support/e2e/rooms";
import { type DevServer, ONE_ADDRESS_FOR_ALL, startDevServer } from "../support/e2e/wrangler";
import { WsClient } from "../support/e2e/ws-client";
import { waitFor } from "../support/frames";

// `npm run chat`, the terminal chat, as people and scripts run it against wrangler dev.

/** A restart of wrangler dev on a loaded machine takes a while; every wait across one allows this long. */
const RESTART_DEADLINE_MS = 90_000;

const SECRET = "terminal-room-secret";

let server: DevServer;

beforeAll(async () => {
  // Its own wrangler dev, since a test here restarts it. Every client is 127.0.0.1, so the
  // per-address limits are lifted; 200 frames per 10 s, so that pacing a script to it is quick
  // to test, and still pacing; a secret, so that private rooms ask for tokens; and threads in pages of three.
  server = await startDevServer({
    vars: { ...ONE_ADDRESS_FOR_ALL, ROOM_SECRET: SECRET, RATE_LIMIT_PER_10S: "200", PRESENCE_LIST_LIMIT: "3", HISTORY_REPLAY_LIMIT: "3" },
  });
}, 120_000);

afterAll(async () => {
  await server?.stop();
});

const wsUrl = (room: string) => `${server.url.replace("http", "ws")}/rooms/${room}`;

// Three tests that mostly wait run at once, first: one waits out a script's
// 15-s deadline, one the room's pace, one only prints. The others start several
// terminals each, which on a loaded machine would slow each other down past
// their deadlines; they run one after another, the restart last.
describe("npm run chat against wrangler dev", () => {
  it.concurrent("gives up with the reason and exit 2 when a script cannot reach the server", async ({ expect }) => {
    const lost = terminal(["lobby", "--name", "bot", "--server", "http://127.0.0.1:1"]);
    lost.type("hello?");
    lost.end();
    // It gives up 15 s after it starts, by its own clock; the rest of this wait is for npm and Node to start.
    expect(await lost.exited(45_000)).toBe(2);
    expect(lost.lines()).toContain("! not sent (the session was closed): hello?");
    expect(lost.lines().at(-1)).toMatch(/^\* gave up connecting after 15 s: cannot reach 127\.0\.0\.1:1\b/);
  }, 60_000);

  it.concurrent(
    "paces a script of 250 lines to the room's limit: every line stored once, in order, exit 0",
    async ({ expect }) => {
      const room = "terminal-paced";
      const lines = Array.from({ length: 250 }, (_, i) => String(i + 1));
      const bot = terminal([room, "--name", "bot", "--server", server.url]);
      try {
        for (const line of lines) bot.type(line);
        bot.end();
        // A burst of 99, then ten a second: about 15 s on any machine, and not one frame refused.
        expect(await bot.exited(RESTART_DEADLINE_MS)).toBe(0);
        expect(bot.lines().filter((l) => l.startsWith("!"))).toEqual([]);
        expect(await storedTexts(server, room)).toEqual(lines);
      } finally {
        bot.kill();
      }
    },
    RESTART_DEADLINE_MS + 30_000,
  );

  it.concurrent("prints its usage for --help and exits 0", async ({ expect }) => {
    const help = terminal(["--help"]);
    expect(await help.exited()).toBe(0);
    expect(help.lines()[0]).toMatch(/^usage: npm run chat -- <room URL or room name>/);
    expect(help.lines()).toContain("  -h, --help               this text");
    for (const command of ["/reply <seq> <text>", "/react <seq> <emoji>", "/unreact <seq> <emoji>", "/thread <seq>", "/search <words>", "/dm <sub>"]) {
      expect(help.lines().some((l) => l.startsWith(`  ${command} `))).toBe(true);
    }
  });

  it("lets two terminals and a ws client chat, with /who and /name", async ({ expect }) => {
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
      await bob.line(/^\[\d\d:\d\d\] #\d+ ann: hello from ann$/);
      expect(await wes.skipTo("message")).toMatchObject({ text: "hello from ann", user: { name: "ann" } });
      wes.send("hello terminals\nsecond line");
      await ann.line(/^\[\d\d:\d\d\] #\d+ wes: hello terminals$/);
      await ann.line(/^ {2}second line$/);
      await bob.line(/^\[\d\d:\d\d\] #\d+ wes: hello terminals$/);

      bob.type("/who");
      await bob.line(/^Online \(3\): ann, bob, wes$/);
      ann.type("/name annie");
      await ann.line(/^You are now known as annie\.$/);
      await bob.line(/^ann is now known as annie\.$/);
      ann.type("//slash at the start");
      await bob.line(/^\[\d\d:\d\d\] #\d+ annie: \/slash at the start$/);
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

  it("replies, reacts and reads a whole thread from a script, by the numbers messages show, and marks a message that mentions its reader", async ({
    expect,
  }) => {
    const room = "terminal-threads";
    const ann = terminal([room, "--name", "ann", "--server", server.url]);
    let bob: Terminal | undefined;
    try {
      await ann.line(/^Welcome to terminal-threads, ann!/);
      ann.type("lunch?");
      const seq = Number(/#(\d+)/.exec(await ann.line(/^\[\d\d:\d\d\] #\d+ ann: lunch\?$/))![1]);
      bob = terminal([room, "--name", "bob", "--server", server.url]);
      await bob.line(new RegExp(`^\\[\\d\\d:\\d\\d\\] #${seq} ann: lunch\\?$`));
      bob.type(`/reply ${seq} @ann sure`);
      bob.type(`/react ${seq} 👍`);
      bob.type(`/react ${seq} 🎉`);
      bob.type(`/unreact ${seq} 🎉`);
      for (const n of [1, 2, 3, 4]) bob.type(`/reply ${seq} reply ${n}`);
      // Three replies a page here: the thread comes in two, each printed as it arrives.
      bob.type(`/thread ${seq}`);
      bob.end();
      expect(await bob.exited()).toBe(0);

      await ann.line(/^@ \[\d\d:\d\d\] #\d+ bob \(replying to ann: "lunch\?"\): @ann sure$/);
      await ann.line(new RegExp(`^\\[\\d\\d:\\d\\d\\] #${seq} bob reacted 👍 to ann's message$`));
      await ann.line(new RegExp(`^\\[\\d\\d:\\d\\d\\] #${seq} bob reacted 🎉 to ann's message$`));
      await ann.line(new RegExp(`^\\[\\d\\d:\\d\\d\\] #${seq} bob took back 🎉 from ann's message$`));
      // Replies do not wait for reactions: the last may come before them.
      await ann.seen(/^\[\d\d:\d\d\] #\d+ bob \(replying to ann: "lunch\?"\): reply 4$/);
      // Only the messages that mention ann are marked for her.
      expect(ann.lines().filter((l) => l.startsWith("@ "))).toHaveLength(1);

      const out = bob.lines();
      const from = out.indexOf(`Thread of #${seq} (5 replies):`);
      expect(from, `bob's output:\n${out.join("\n")}`).toBeGreaterThanOrEqual(0);
      expect(out.slice(from + 1, from + 7).map((l) => l.replace(/^\[\d\d:\d\d\] #\d+ /, ""))).toEqual([
        "ann: lunch?",
        "bob: @ann sure",
        "bob: reply 1",
        "bob: reply 2",
        "bob: reply 3",
        "bob: reply 4",
      ]);
      ann.end();
      expect(await ann.exited()).toBe(0);

      const refused = terminal([room, "--name", "cat", "--server", server.url]);
      refused.type("/react 99999 👍");
      refused.type("/react 1");
      refused.end();
      expect(await refused.exited()).toBe(1);
      expect(refused.lines()).toContain("usage: /react <seq> <emoji>, where <seq> is the number after a message's time");
      expect(refused.lines().find((l) => l.startsWith("! not sent"))).toMatch(/^! not sent \(.+\): \/react 99999 👍$/);
    } finally {
      ann.kill();
      bob?.kill();
    }
  });

  it("searches from a script, newest first and page after page, refuses a bad query in words, and opens a direct conversation, exit 0", async ({ expect }) => {
    const room = "terminal-search";
    const token = await signToken(SECRET, { room: "*", name: "ann", sub: "ann-terminal-sub", exp: Math.floor(Date.now() / 1000) + 600 });
    // More than the 20 results a search frame holds: two pages.
    const lunches = Array.from({ length: 23 }, (_, i) => `lunch number ${i + 1}`);
    const ann = terminal([room, "--token", token, "--server", server.url]);
    try {
      for (const line of ["dinner first", ...lunches, "dinner again"]) ann.type(line);
      ann.type("/search lunch");
      ann.type('/search "unclosed');
      ann.type("/search nowhere");
      ann.type("/dm bob-terminal-sub");
      ann.end();
      expect(await ann.exited()).toBe(0);
      const out = ann.lines();
      const from = out.indexOf('Found for "lunch", newest first:');
      expect(from, `ann's output:\n${out.join("\n")}`).toBeGreaterThanOrEqual(0);
      const results = out.slice(from + 1, from + 1 + lunches.length);
      expect(results.map((l) => l.replace(/^\[\d\d:\d\d\] #\d+ /, ""))).toEqual(lunches.map((l) => `ann: ${l.replace("lunch", "[lunch]")}`).reverse());
      const seqs = results.map((l) => Number(/#(\d+)/.exec(l)![1]));
      expect(seqs).toEqual([...seqs].sort((a, b) => b - a));
      expect(out[from + 1 + lunches.length]).toMatch(/^! .+/);
      expect(out).toContain('Nothing found for "nowhere".');
      expect(out.find((l) => l.startsWith("* your direct conversation with bob-terminal-sub: "))).toMatch(
        new RegExp(`: ${server.url.replace(/[.]/g, "\\.")}/rooms/dm-[^ ]+$`),
      );
    } finally {
      ann.kill();
    }
  });

  it("exits 1 when a line was refused, and 2 with the reason when the room refuses it or the URL is bad", async ({ expect }) => {
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

  it("leaves on /quit once what was sent is stored, sends nothing typed after it, and needs no end of input", async ({ expect }) => {
    const room = "terminal-quit";
    const ann = terminal([room, "--name", "ann", "--server", server.url]);
    try {
      await ann.line(/^Welcome to terminal-quit, ann!/);
      ann.type("before quit");
      ann.type("/quit");
      ann.type("after quit");
      expect(await ann.exited()).toBe(0);
      expect(await storedTexts(server, room)).toEqual(["before quit"]);
    } finally {
      ann.kill();
    }
  });

  // Last, since it restarts the server that the others use.
  it("runs a script through a server restart: every line sent once, every one acknowledged, exit 0", async ({ expect }) => {
    const room = "terminal-script";
    const bot = terminal([room, "--name", "bot", "--server", server.url]);
    try {
      bot.type("first");
      await bot.line(/^\[\d\d:\d\d\] #\d+ bot: first$/);
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
});

interface Terminal {
  type(line: string): void;
  end(): void;
  /** Waits for a line printed after the last one waited for, and returns it. */
  line(pattern: RegExp): Promise<string>;
  /** Waits for a line printed at any time. */
  seen(pattern: RegExp): Promise<void>;
  lines(): string[];
  errors(): string;
  exited(timeoutMs?: number): Promise<number | null>;
  kill(): void;
}

/**
 * `npm run -s chat -- <args>` with piped stdin and stdout, as a script would
 * run it, but for its prechat build of the client library, which the global
 * setup (test/support/e2e/wrangler-dev.ts) ran once: terminals started at once
 * would rewrite dist/client.js while another one loads it.
 */
function terminal(args: string[]): Terminal {
  const child: ChildProcessWithoutNullStreams = spawn("npm", ["run", "-s", "--ignore-scripts", "chat", "--", ...args], { env: { ...process.env, TZ: "UTC" } });
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
    async seen(pattern) {
      await waitFor(
        () => lines().some((l) => pattern.test(l)),
        () => `a line matching ${pattern} from npm run chat -- ${args.join(" ")}; it printed:\n${out}${err}`,
        RESTART_DEADLINE_MS,
      );
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
