// npm run chat -- <room URL or room name> [--name ann] [--token …] [--server http://127.0.0.1:8787]
// The chat in a terminal, line by line, as the original was over telnet,
// built on edge-chat/client: every line typed is a message; /who, /name,
// /quit. With stdin that is not a terminal it sends every line, waits for
// each to be acknowledged or refused, and exits: 0 when all were stored, 1
// when any was refused, 2 when the URL is bad or the room refused the
// connection.
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { ChatClient, ChatError, toText, type ChangeFrame, type MessageFrame, type User } from "edge-chat/client";
import { isRoomName } from "../src/names.ts";

const USAGE = "usage: npm run chat -- <room URL or room name> [--name ann] [--token …] [--server http://127.0.0.1:8787]";
const DEFAULT_SERVER = "http://127.0.0.1:8787";

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

let parsed;
try {
  parsed = parseArgs({ allowPositionals: true, options: { name: { type: "string" }, token: { type: "string" }, server: { type: "string", default: DEFAULT_SERVER } } });
} catch (error) {
  fail(error instanceof Error ? error.message : String(error));
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

chat.on("welcome", (frame) => {
  say(`Welcome to ${frame.room}, ${frame.you.name}! ${online(frame.users, frame.online)}`);
});
chat.on("message", onEntry);
chat.on("change", onEntry);
chat.on("reset", () => say("(the room's history was reset; here are its latest messages)"));
chat.on("gap", () => say("(some messages you missed are no longer kept)"));
chat.on("presence", (frame) => {
  if (frame.joined.length + frame.left.length + frame.renamed.length > 0) say(toText(frame)!);
});
chat.on("state", ({ state, retryInMs }) => {
  if (state === "open") {
    if (everOpen) say("* reconnected");
    everOpen = wasOpen = true;
  } else if (state === "waiting" && wasOpen) {
    say(`* connection lost; reconnecting in ${Math.ceil((retryInMs ?? 0) / 1000)} s`);
    wasOpen = false;
  }
  setPrompt();
});
chat.on("refused", ({ refusal, retryInMs }) => {
  if (retryInMs !== null) say(`* the room is not letting us in now: ${refusal.message}; trying again in ${Math.ceil(retryInMs / 1000)} s`);
  else {
    say(`* ${everOpen ? "disconnected" : "cannot join"}: ${refusal.message}`);
    lines.close();
    process.exitCode = 2;
  }
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

async function command(line: string): Promise<boolean> {
  const [word, ...rest] = line.split(/\s+/);
  try {
    switch (word) {
      case "/quit":
        return false;
      case "/who": {
        const page = await chat.who();
        say(online(page.users, page.online));
        return true;
      }
      case "/name": {
        const user = await chat.rename(rest.join(" "));
        say(`You are now known as ${user.name}.`);
        setPrompt();
        return true;
      }
      default:
        say(`unknown command ${word}; the commands are /who, /name <new name> and /quit (a line starting with // sends it from the second /)`);
        return true;
    }
  } catch (error) {
    say(`! ${error instanceof ChatError ? error.message : String(error)}`);
    return true;
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
  if (process.exitCode === undefined) process.exitCode = refused > 0 ? 1 : 0;
  // Nothing else is waiting once the session is closed; an open stdin is the only thing left.
  process.stdin.destroy();
}

let quitting = false;
lines.on("line", (line) => {
  if (quitting) return;
  if (line.startsWith("/") && !line.startsWith("//")) {
    const done = command(line.trim()).then((more) => {
      if (!more) {
        quitting = true;
        lines.close();
      }
    });
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
