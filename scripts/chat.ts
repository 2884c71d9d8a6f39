// npm run chat -- <room URL or room name> [--name ann] [--token …] [--server http://127.0.0.1:8787]
// The chat in a terminal, line by line, as the original was over telnet,
// built on edge-chat/client: every line typed is a message; /reply, /react,
// /unreact, /thread, /search, /dm, /who, /name, /quit. With stdin that is
// not a terminal it sends every line, waits for each to be acknowledged or
// refused, and exits: 0 when all were stored, 1 when any was refused, 2
// when the URL is bad, the room refused the connection, or it could not
// connect at all.
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import {
  ChatClient,
  ChatError,
  toText,
  type ChangeFrame,
  type ChatMessage,
  type MessageFrame,
  type SearchResult,
  type TypingUsers,
  type User,
} from "edge-chat/client";
import { isRoomName } from "../src/protocol/names.ts";

const USAGE = "usage: npm run chat -- <room URL or room name> [--name ann] [--token …] [--server http://127.0.0.1:8787]";
const DEFAULT_SERVER = "http://127.0.0.1:8787";
/** How long a script waits for its first connection before it gives up. */
const CONNECT_DEADLINE_MS = 15_000;
/** How long after their last keystroke someone at a terminal still counts as reading what is printed. */
const AWAY_AFTER_MS = 5 * 60_000;

const HELP = `${USAGE}

Chat in a room from a terminal. Every line you type is a message; a line
that must start with / is typed as //.

  <room URL or room name>  ws://, wss://, http:// or https://…/rooms/<room>, or a room name on --server
  --name <name>            your display name (unless the token names you)
  --token <JWT>            a token for the room, needed in private- rooms
  --server <URL>           where a room name is, by default ${DEFAULT_SERVER}
  -h, --help               this text

Each message shows its number (#12), which these commands take:

  /reply <seq> <text>      answer message <seq>; the room quotes its start
  /react <seq> <emoji>     react to message <seq> (👍, or a :short_name:)
  /unreact <seq> <emoji>   take that reaction back
  /thread <seq>            message <seq> and every reply to it
  /search <words>          the messages that hold these words, newest first
  /dm <sub>                your direct conversation with the account <sub>:
                           prints the room's URL, to join with this command
                           and your --token (one for every room, with a sub)
  /who                     who is online
  /name <new name>         rename yourself
  /quit                    leave once what you sent is stored

A message that mentions you (@yourname) is shown in bold, or in a script's
output after "@ ". In a terminal, who else is typing shows under the
messages, and others see when you type. A message printed in a terminal
counts as read, on your other devices too, unless you have been away
(no key pressed for ${AWAY_AFTER_MS / 60_000} minutes): those printed meanwhile are counted in the
prompt, "ann (3 unread)>", until you press a key.

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

/** Whether stdout is a terminal, where lines can be bold and a line can be taken back. */
const tty = process.stdout.isTTY === true;
/** Whether the input has ended: then there is no prompt left to draw. */
let inputClosed = false;
/** Who else is typing, in words, shown on a terminal under the messages until it changes; empty when nobody is. */
let typingLine = "";
/** Whether the terminal shows `typingLine` now (above the prompt, or on the last line without one). */
let typingShown = false;

/**
 * Writes lines on a terminal above who is typing and the prompt, by
 * clearing both and drawing them again under the new lines.
 */
function draw(above: string): void {
  const prompting = interactive && !inputClosed;
  let out = "\r\x1b[K";
  if (prompting && typingShown) out += "\x1b[1A\r\x1b[K";
  out += above;
  typingShown = typingLine !== "";
  if (typingShown) out += prompting ? `\x1b[2m${typingLine}\x1b[22m\n` : `\x1b[2m${typingLine}\x1b[22m`;
  process.stdout.write(out);
  if (prompting) lines.prompt(true);
}

/** Prints a line above what is being typed. */
function say(line: string): void {
  if (!tty || inputClosed) process.stdout.write(`${line}\n`);
  else draw(`${line}\n`);
}

function clock(at: number): string {
  const time = new Date(at);
  return `${String(time.getHours()).padStart(2, "0")}:${String(time.getMinutes()).padStart(2, "0")}`;
}

/**
 * A message or a change to one, in the text format's words (further lines
 * indented, so that none passes for another; an edit marked, a delete
 * without its text, a reply with the start of what it answers), after the
 * time it happened and the number of the message, which commands take.
 */
function entry(frame: MessageFrame | ChangeFrame): string {
  const at = frame.type === "message" ? frame.at : frame.type === "edit" ? frame.editedAt : frame.type === "delete" ? frame.deletedAt : Date.now();
  return `[${clock(at)}] #${frame.seq} ${toText(frame)}`;
}

/** When the person at the terminal last pressed a key: until `AWAY_AFTER_MS` after it, what is printed is read. */
let pressedAt = Date.now();
const present = () => interactive && Date.now() - pressedAt < AWAY_AFTER_MS;

/** A message that mentions this user stands out: in bold on a terminal, after "@ " where nothing can be bold. */
function onMessage(message: ChatMessage): void {
  const line = entry(message);
  if (!message.mentionsMe) say(line);
  else say(tty ? `\x1b[1m${line}\x1b[22m` : `@ ${line}`);
  if (present()) chat.markRead(message.seq);
}

/** Who is typing in a sentence: `ann is typing…`, `ann and bob are typing…`, `ann, bob and 4 others are typing…`. */
function typingWords({ users, count }: TypingUsers): string {
  if (count === 0) return "";
  const shown = (count <= 3 ? users : users.slice(0, 2)).map((u) => u.name);
  const others = count - shown.length;
  const names = others > 0 ? [...shown, `${others} ${others === 1 ? "other" : "others"}`] : shown;
  const list = names.length === 1 ? names[0]! : `${names.slice(0, -1).join(", ")} and ${names.at(-1)}`;
  return `${list} ${count === 1 ? "is" : "are"} typing…`;
}

function online(users: User[], count: number): string {
  const names = users.map((u) => u.name).join(", ");
  return `Online (${count}): ${count > users.length ? `${names} and ${count - users.length} more` : names}`;
}

function promptText(): string {
  const you = chat.you?.name ?? name ?? "you";
  const state = chat.state === "open" ? "" : `${chat.state}… `;
  const unsent = chat.pending.length === 0 ? "" : `(${chat.pending.length} sending) `;
  const unread = chat.unread === 0 ? "" : ` (${chat.unread} unread)`;
  return `${state}${unsent}${you}${unread}> `;
}

function setPrompt(): void {
  if (!interactive || inputClosed) return;
  lines.setPrompt(promptText());
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
chat.on("message", onMessage);
chat.on("unread", () => {
  // A message counts as unread until it is printed, just after: only a count that stays is worth drawing.
  queueMicrotask(() => {
    if (interactive && !inputClosed && promptText() !== lines.getPrompt()) setPrompt();
  });
});
chat.on("change", (change) => say(entry(change)));
chat.on("typing", (typers) => {
  if (!tty || inputClosed) return;
  typingLine = typingWords(typers);
  if (typingLine !== "" || typingShown) draw("");
});
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

/** Something the room stores, sent as `line` was typed: it counts as refused if the room refuses it. */
function write(line: string, written: Promise<number>): void {
  const sent = written.then(
    () => setPrompt(),
    (error: unknown) => {
      refused++;
      const reason = error instanceof ChatError ? error.message : String(error);
      say(`! not sent (${reason}): ${line}`);
    },
  );
  sending.add(sent);
  void sent.finally(() => sending.delete(sent));
  setPrompt();
}

/** A message's number as a command's argument, or null. */
function seqOf(word: string | undefined): number | null {
  return word !== undefined && /^[1-9][0-9]{0,15}$/.test(word) ? Number(word) : null;
}

/** Prints message `seq` and every reply to it, a page at a time as the room sends them, once what was typed before is settled. */
async function showThread(seq: number): Promise<void> {
  // A request goes as soon as it is asked for, ahead of writes still waiting their turn: the replies just typed belong in it.
  await Promise.allSettled([...sending]);
  let page = await chat.thread(seq);
  const replies = page.root.replies ?? 0;
  say(`Thread of #${seq} (${replies} ${replies === 1 ? "reply" : "replies"}):\n${entry(page.root)}`);
  for (;;) {
    // Every reply answers the root: the quote of it would only repeat the line above.
    if (page.messages.length > 0) say(page.messages.map(({ replyTo: _, ...reply }) => entry(reply)).join("\n"));
    const last = page.messages.at(-1);
    if (!page.more || last === undefined) return;
    page = await chat.thread(seq, last.seq);
  }
}

/** Prints the messages that match `q`, newest first, a page at a time, once what was typed before is settled. */
async function showSearch(q: string): Promise<void> {
  // As for a thread: the lines just typed are to be found.
  await Promise.allSettled([...sending]);
  let page = await chat.search(q);
  if (page.results.length === 0) say(`Nothing found for ${JSON.stringify(q)}.`);
  else say(`Found for ${JSON.stringify(q)}, newest first:`);
  for (;;) {
    if (page.results.length > 0) say(page.results.map(found).join("\n"));
    const last = page.results.at(-1);
    if (!page.more || last === undefined) break;
    page = await chat.search(q, last.seq);
  }
  if (page.partial) say("(the room is still indexing its older messages: some of them may be missing)");
}

/** A search result as a message line, with the matching words in brackets: `[hh:mm] #12 ann: …the [lunch] menu…`. */
function found({ seq, user, at, snippet }: SearchResult): string {
  return `[${clock(at)}] #${seq} ${user.name}: ${snippet.replaceAll("\n", " ")}`;
}

/** Opens the direct conversation with account `to`, and says how to join it: the token stays out of what is printed. */
async function openDirect(to: string): Promise<void> {
  if (token === undefined) return say("/dm needs --token: a token for every room (room *) that names you with a sub");
  const direct = await ChatClient.openDirect(url.href, token, to);
  say(`* your direct conversation with ${direct.with}: ${direct.url}\n  join it with: npm run chat -- ${direct.url} --token <the same token>`);
}

const COMMANDS =
  "/reply <seq> <text>, /react <seq> <emoji>, /unreact <seq> <emoji>, /thread <seq>, /search <words>, /dm <sub>, /who, /name <new name> and /quit";

async function command(line: string): Promise<void> {
  const [word, ...rest] = line.split(/\s+/);
  const seq = seqOf(rest[0]);
  try {
    switch (word) {
      case "/reply": {
        const text = line.replace(/^\/reply\s+\S+\s?/, "");
        if (seq === null || text.trim() === "") return say("usage: /reply <seq> <text>, where <seq> is the number after a message's time");
        return write(line, chat.reply(seq, text));
      }
      case "/react":
      case "/unreact": {
        const emoji = rest[1];
        if (seq === null || emoji === undefined || rest.length > 2)
          return say(`usage: ${word} <seq> <emoji>, where <seq> is the number after a message's time`);
        return write(line, word === "/react" ? chat.react(seq, emoji) : chat.unreact(seq, emoji));
      }
      case "/thread":
        if (seq === null || rest.length > 1) return say("usage: /thread <seq>, where <seq> is the number after a message's time");
        return await showThread(seq);
      case "/search": {
        const q = line.replace(/^\/search\s*/, "");
        if (q === "") return say("usage: /search <words>");
        return await showSearch(q);
      }
      case "/dm":
        if (rest.length !== 1 || rest[0] === "") return say("usage: /dm <sub>, the account of the person to talk to");
        return await openDirect(rest[0]!);
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
        say(`unknown command ${word}; the commands are ${COMMANDS} (a line starting with // sends it from the second /)`);
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
  if (text.trim() !== "") write(text, chat.send(text));
});
lines.on("close", () => {
  // Who is typing is news only while someone can answer.
  if (typingShown) process.stdout.write(interactive ? "\r\x1b[K\x1b[1A\r\x1b[K" : "\r\x1b[K");
  typingShown = false;
  inputClosed = true;
  void finish();
});
if (interactive) {
  // Enter leaves what was typed on screen and moves the prompt down: the typing line above it goes first, or it would stay behind.
  process.stdin.prependListener("keypress", (_: unknown, key: { name?: string } | undefined) => {
    if (!typingShown || (key?.name !== "return" && key?.name !== "enter")) return;
    const { rows, cols } = lines.getCursorPos();
    process.stdout.write(`\x1b[${rows + 1}A\r\x1b[M${rows > 0 ? `\x1b[${rows}B` : ""}\x1b[${cols + 1}G`);
    typingShown = false;
  });
  // Others see that this user types a message (not a command), until it is sent or cleared.
  process.stdin.on("keypress", () => {
    // Back at the terminal: what was printed meanwhile is in front of them.
    pressedAt = Date.now();
    if (chat.unread > 0) chat.markRead();
    const typed = lines.line;
    chat.typing(typed !== "" && (!typed.startsWith("/") || typed.startsWith("//")));
  });
}
lines.on("SIGINT", () => process.exit(130));
setPrompt();
if (interactive) say(`* connecting to ${url.host}…`);
