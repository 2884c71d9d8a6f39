// npm run chat -- <room URL or room name> [--name ann] [--token …] [--server http://127.0.0.1:8787]
// The chat in a terminal, line by line, as the original was over telnet,
// built on edge-chat/client: every line typed is a message; /who, /name,
// /quit. With stdin that is not a terminal it sends every line, waits for
// each to be acknowledged or refused, and exits: 0 when all were stored, 1
// when any was refused, 2 when the URL is bad, the room refused the
// connection, or it could not connect at all.
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { ChatClient, ChatError, toText, type ChangeFrame, type MessageFrame, type User } from "edge-chat/client";
import { isRoomName } from "../src/protocol/names.ts";

const USAGE = "usage: npm run chat -- <room URL or room name> [--name ann] [--token …] [--server http://127.0.0.1:8787]";
const DEFAULT_SERVER = "http://127.0.0.1:8787";
/** How long a script waits for its first connection before it gives up. */
const CONNECT_DEADLINE_MS = 15_000;

const HELP = `${USAGE}

Chat in a room from a terminal. Every line you type is a message; a line
that must start with / is typed as //.

  <room URL or room name>  ws://, wss://, http:// or https://…/rooms/<room>, or a room name on --server
  --name <name>            your display name (unless the token names you)
  --token <JWT>            a token for the room, needed in private- rooms
  --server <URL>           where a room name is, by default ${DEFAULT_SERVER}
  -h, --help               this text

Commands: /who lists who is online, /name <new name> renames you, /quit
leaves once what you sent is stored.

With stdin that is not a terminal, every line is sent, in order, paced to
the room's rate limit, and the exit code says how it went: 0 all stored,
1 some refused, 2 a bad URL, a room that refused the connection, or no
connection within ${CONNECT_DEADLINE_MS / 1000} s.
`;

function fail(message: string): never {
  process.stderr.write(`${message}\n${USAGE}\n`);
  process.exit(2);
}

/** The room's WebSocket URL, from a URL of any scheme the room answers, or a room name on `server`. */
function roomUrl(target: string, server: string): URL {
  if (/^[a-z]+:\/\//i.test(target)) {
    let url: URL;
    try {
      url = new URL(target);
    } catch {
      fail(`not a URL: ${target}`);
    }
    const protocol = { "http:": "ws:", "https:": "wss:", "ws:": "ws:", "wss:": "wss:" }[url.protocol];
    if (protocol === undefined || !/^\/rooms\/[^/]+$/.test(url.pathname)) fail(`not a room's URL (…/rooms/<room>): ${target}`);
    url.protocol = protocol;
    return url;
  }
  if (!isRoomName(target)) fail(`not a room name: ${target} (letters, digits, '.', '_' and '-', at most 64)`);
  let base: URL;
  try {
    base = new URL(server);
  } catch {
    fail(`not a server URL: ${server}`);
  }
  if (base.protocol !== "http:" && base.protocol !== "https:") fail(`the server's URL must be http: or https:, not ${base.protocol}`);
  const url = new URL(`/rooms/${target}`, base);
  url.protocol = base.protocol === "https:" ? "wss:" : "ws:";
  return url;
}

function commandLine() {
  try {
    return parseArgs({
      allowPositionals: true,
      options: {
        name: { type: "string" },
        token: { type: "string" },
        server: { type: "string", default: DEFAULT_SERVER },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (error) {
    fail(error instanceof Error ? error.message : String(error));
  }
}
const parsed = commandLine();
if (parsed.values.help) {
  process.stdout.write(HELP);
  process.exit(0);
}
const [target, extra] = parsed.positionals;
if (target === undefined || extra !== undefined) fail("one room URL or room name is required");
const { name, token, server } = parsed.values;
const url = roomUrl(target, server);

const interactive = process.stdin.isTTY === true && process.stdout.isTTY === true;
const lines = createInterface({ input: process.stdin, output: interactive ? process.stdout : undefined, terminal: interactive });
const chat = new ChatClient({ url: url.href, ...(name !== undefined && { name }), ...(token !== undefined && { token }) });

/** Whether the input has ended: then there is no prompt left to draw. */
let inputClosed = false;

/** Prints a line above what is being typed. */
function say(line: string): void {
  if (!interactive || inputClosed) {
    process.stdout.write(`${line}\n`);
    return;
  }
  process.stdout.write(`\r\x1b[K${line}\n`);
  lines.prompt(true);
}

function clock(at: number): string {
  const time = new Date(at);
  return `${String(time.getHours()).padStart(2, "0")}:${String(time.getMinutes()).padStart(2, "0")}`;
}

/**
 * A message or a change to one, in the text format's words (further lines
 * indented, so that none passes for another; an edit marked, a delete
 * without its text), after the time it happened.
 */
function onEntry(frame: MessageFrame | ChangeFrame): void {
  const at = frame.type === "message" ? frame.at : frame.type === "edit" ? frame.editedAt : frame.deletedAt;
  say(`[${clock(at)}] ${toText(frame)}`);
}

function online(users: User[], count: number): string {
  const names = users.map((u) => u.name).join(", ");
  return `Online (${count}): ${count > users.length ? `${names} and ${count - users.length} more` : names}`;
}

function setPrompt(): void {
  if (!interactive || inputClosed) return;
  const you = chat.you?.name ?? name ?? "you";
  const state = chat.state === "open" ? "" : `${chat.state}… `;
  const unsent = chat.pending.length === 0 ? "" : `(${chat.pending.length} sending) `;
  lines.setPrompt(`${state}${unsent}${you}> `);
  lines.prompt(true);
}

let everOpen = false;
/** Open since the last drop, which is worth a line; failed attempts after it are not. */
let wasOpen = false;
let refused = 0;
const sending = new Set<Promise<unknown>>();
/** Why the last attempt to connect failed. */
let lastFailure: string | null = null;
/** A refusal to retry was just said, and the `waiting` state after it has nothing to add. */
let refusing = false;
/** Why the session ended for good, said last, after what was not sent. */
let ending: string | null = null;

/** Ends the session for good, and the program with 2, once what was sent is settled. */
function end(words: string): void {
  ending = words;
  process.exitCode = 2;
  chat.close();
  lines.close();
}

// A script waits only so long for its first connection: a server that is not there would keep it forever.
const deadline = interactive
  ? undefined
  : setTimeout(() => end(`* gave up connecting after ${CONNECT_DEADLINE_MS / 1000} s: ${lastFailure ?? `no answer from ${url.host}`}`), CONNECT_DEADLINE_MS);

chat.on("welcome", (frame) => {
  clearTimeout(deadline);
  say(`Welcome to ${frame.room}, ${frame.you.name}! ${online(frame.users, frame.online)}`);
});
chat.on("message", onEntry);
chat.on("change", onEntry);
chat.on("reset", () => say("(the room's history was reset; here are its latest messages)"));
chat.on("gap", () => say("(some messages you missed are no longer kept)"));
chat.on("presence", (frame) => {
  if (frame.joined.length + frame.left.length + frame.renamed.length > 0) say(toText(frame)!);
});
chat.on("state", ({ state, retryInMs, reason }) => {
  const wait = `${Math.ceil((retryInMs ?? 0) / 1000)} s`;
  if (state === "open") {
    if (everOpen) say("* reconnected");
    everOpen = wasOpen = true;
  } else if (state === "waiting" && wasOpen) {
    say(`* connection lost (${reason}); reconnecting in ${wait}`);
    wasOpen = false;
  } else if (state === "waiting" && !refusing) {
    lastFailure = reason ?? null;
    say(`* cannot connect (${reason}); trying again in ${wait}`);
  }
  refusing = false;
  setPrompt();
});
chat.on("refused", ({ refusal, retryInMs }) => {
  if (retryInMs === null) return end(`* ${everOpen ? "disconnected" : "cannot join"}: ${refusal.message}`);
  refusing = true;
  lastFailure = refusal.message;
  say(`* the room is not letting us in now: ${refusal.message}; trying again in ${Math.ceil(retryInMs / 1000)} s`);
});

function send(text: string): void {
  const sent = chat.send(text).then(
    () => setPrompt(),
    (error: unknown) => {
      refused++;
      const reason = error instanceof ChatError ? error.message : String(error);
      say(`! not sent (${reason}): ${text}`);
    },
  );
  sending.add(sent);
  void sent.finally(() => sending.delete(sent));
  setPrompt();
}

async function command(line: string): Promise<void> {
  const [word, ...rest] = line.split(/\s+/);
  try {
    switch (word) {
      case "/who": {
        const page = await chat.who();
        say(online(page.users, page.online));
        return;
      }
      case "/name": {
        const user = await chat.rename(rest.join(" "));
        say(`You are now known as ${user.name}.`);
        setPrompt();
        return;
      }
      default:
        say(`unknown command ${word}; the commands are /who, /name <new name> and /quit (a line starting with // sends it from the second /)`);
    }
  } catch (error) {
    say(`! ${error instanceof ChatError ? error.message : String(error)}`);
  }
}

/** Resolves once the session is live, or over for good. */
function settled(): Promise<void> {
  return new Promise((resolve) => {
    if (chat.state === "open" || chat.state === "closed") return resolve();
    const stop = chat.on("state", ({ state }) => {
      if (state !== "open" && state !== "closed") return;
      stop();
      resolve();
    });
  });
}

/**
 * Ends once what was sent is settled: after /quit, at the end of the
 * input, or on a refusal that ends the session. A script's run connects
 * first even with nothing to send, to print what the room has.
 */
async function finish(): Promise<void> {
  if (interactive && chat.pending.length > 0) say(`* waiting for ${chat.pending.length} message(s) to be acknowledged…`);
  if (!interactive || sending.size > 0) await settled();
  while (sending.size > 0) await Promise.allSettled([...sending]);
  chat.close();
  clearTimeout(deadline);
  if (ending !== null) say(ending);
  if (process.exitCode === undefined) process.exitCode = refused > 0 ? 1 : 0;
  // Nothing else is waiting once the session is closed; an open stdin is the only thing left.
  process.stdin.destroy();
}

let quitting = false;
lines.on("line", (line) => {
  if (quitting) return;
  if (line.trim() === "/quit") {
    // At once: the lines after it, maybe read in the same chunk, are not to be sent.
    quitting = true;
    lines.close();
    return;
  }
  if (line.startsWith("/") && !line.startsWith("//")) {
    const done = command(line.trim());
    sending.add(done);
    void done.finally(() => sending.delete(done));
    return;
  }
  const text = line.startsWith("//") ? line.slice(1) : line;
  if (text.trim() !== "") send(text);
});
lines.on("close", () => {
  inputClosed = true;
  void finish();
});
lines.on("SIGINT", () => process.exit(130));
setPrompt();
if (interactive) say(`* connecting to ${url.host}…`);
