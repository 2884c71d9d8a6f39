/**
 * Reading a client's text frame: what a command must hold, and the rules
 * for a message's text wherever it comes from.
 */

import { isReactionEmoji } from "./emoji";
import { checkDisplayName } from "./names";
import { type ErrorCode, type ErrorFrame, type Sanction, errorFrame } from "./frames";
import { MAX_MESSAGE_ID_CHARS, MAX_QUERY_CHARS, MAX_SANCTION_SECONDS } from "./sizes";
import type { ClientFrame, DeleteRequest, ModerationFrame, ReactionRequest } from "./requests";

const SANCTIONS: readonly string[] = ["kick", "ban", "unban", "mute", "unmute"] satisfies Sanction[];

export type Parsed = { ok: true; frame: ClientFrame } | { ok: false; error: ErrorFrame };

/** A member's id: the room's connection counter, in decimal. */
const USER_ID = /^[0-9]{1,15}$/;

/**
 * Reads one client text frame (already checked for size). Only a JSON object
 * with a string `type` is a command; any other text, JSON or not, is a chat
 * message as typed, so raw WebSocket clients can chat without knowing the
 * protocol.
 */
export function parseClientFrame(data: string, maxMessageChars: number): Parsed {
  const command = asCommand(data);
  if (command === null) return chat(data, maxMessageChars);
  const { id } = command;
  if (id !== undefined && !isMessageId(id)) return { ok: false, error: BAD_MESSAGE_ID };
  const parsed = parseCommand(command, maxMessageChars);
  // Whatever the answer, it names the frame it answers.
  if (id === undefined) return parsed;
  return parsed.ok ? { ok: true, frame: { ...parsed.frame, id } } : { ok: false, error: { ...parsed.error, id } };
}

function parseCommand(command: Record<string, unknown> & { type: string }, maxMessageChars: number): Parsed {
  switch (command.type) {
    case "message": {
      const { text, replyTo } = command;
      if (typeof text !== "string") return fail("bad_message", "a message needs a string `text`");
      if (replyTo === undefined) return chat(text, maxMessageChars);
      if (!isSeq(replyTo)) return fail("bad_message", "`replyTo` must be the seq of the message replied to, a whole number from 1");
      const checked = checkText(text, maxMessageChars);
      return checked.ok ? { ok: true, frame: { type: "message", text: checked.text, replyTo } } : checked;
    }
    case "typing": {
      const { stop } = command;
      if (stop === undefined || stop === false) return { ok: true, frame: { type: "typing" } };
      if (stop === true) return { ok: true, frame: { type: "typing", stop } };
      return fail("bad_message", "a typing frame's `stop` must be true or absent");
    }
    case "react":
    case "unreact":
      return reaction(command);
    case "read": {
      const seq = messageSeq(command);
      if (seq === null) return fail("bad_message", "a read frame needs `seq`: the seq of the newest message read, a whole number from 1");
      return { ok: true, frame: { type: "read", seq } };
    }
    case "search": {
      const { before } = command;
      const q = searchQuery(command.q);
      if (!q.ok) return q;
      if (before === undefined) return { ok: true, frame: { type: "search", q: q.q } };
      if (!isSeq(before)) return fail("bad_message", "a search's `before` must be the seq of the last result you have, a whole number from 1");
      return { ok: true, frame: { type: "search", q: q.q, before } };
    }
    case "thread": {
      const { after } = command;
      const seq = messageSeq(command);
      if (seq === null) return { ok: false, error: BAD_SEQ };
      if (after === undefined) return { ok: true, frame: { type: "thread", seq } };
      if (typeof after !== "number" || !Number.isSafeInteger(after) || after < 0) {
        return fail("bad_message", "a thread request's `after` must be the seq of the last reply you have, 0 or more");
      }
      return { ok: true, frame: { type: "thread", seq, after } };
    }
    case "rename": {
      if (typeof command.name !== "string") return fail("bad_name", "a rename needs a string `name`");
      const checked = checkDisplayName(command.name);
      if (!checked.ok) return fail("bad_name", checked.message);
      return { ok: true, frame: { type: "rename", name: checked.name } };
    }
    case "who": {
      const { after } = command;
      if (after === undefined) return { ok: true, frame: { type: "who" } };
      if (typeof after !== "string" || !USER_ID.test(after)) {
        return fail("bad_message", "a who request's `after` must be the id of the last user you have, a string of digits");
      }
      return { ok: true, frame: { type: "who", after } };
    }
    case "batching": {
      if (typeof command.on !== "boolean")
        return fail("bad_message", "a batching request needs `on`: true for batch frames while the room is busy, false for none");
      return { ok: true, frame: { type: "batching", on: command.on } };
    }
    case "history": {
      const { after } = command;
      if (typeof after !== "number" || !Number.isSafeInteger(after) || after < 0) {
        return fail("bad_message", "a history request needs `after`: the seq of the last message you have, 0 or more");
      }
      return { ok: true, frame: { type: "history", after } };
    }
    case "kick":
    case "ban":
    case "unban":
    case "mute":
    case "unmute":
      return moderation(command);
    case "edit": {
      const { text } = command;
      const seq = messageSeq(command);
      if (seq === null) return { ok: false, error: BAD_SEQ };
      if (typeof text !== "string") return fail("bad_message", "an edit needs the new text as a string `text`");
      const checked = checkText(text, maxMessageChars);
      if (!checked.ok) return checked;
      return { ok: true, frame: { type: "edit", seq, text: checked.text } };
    }
    case "delete":
      return deletion(command);
    case "token": {
      const { token } = command;
      if (typeof token !== "string" || token === "") return fail("bad_message", "a token frame needs the new token as a string `token`");
      return { ok: true, frame: { type: "token", token } };
    }
    default:
      return fail("unknown_type", `unknown frame type ${JSON.stringify(command.type).slice(0, 80)}`);
  }
}

/**
 * A moderation frame, checked here like any other; whether its sender may
 * send it is the room's business.
 */
export function moderation(command: Record<string, unknown> & { type: string }): { ok: true; frame: ModerationFrame } | { ok: false; error: ErrorFrame } {
  const { type, user, seconds } = command;
  if (!SANCTIONS.includes(type)) return { ok: false, error: errorFrame("unknown_type", `unknown frame type ${JSON.stringify(type).slice(0, 80)}`) };
  if (typeof user !== "string" || !USER_ID.test(user)) return { ok: false, error: errorFrame("bad_message", "`user` must be a user's id, a string of digits") };
  const frame: ModerationFrame = { type: type as Sanction, user };
  if (type === "ban" || type === "mute") {
    if (typeof seconds !== "number" || !Number.isSafeInteger(seconds) || seconds < 1 || seconds > MAX_SANCTION_SECONDS) {
      return { ok: false, error: errorFrame("bad_message", `a ${type} needs \`seconds\`: a whole number from 1 to ${MAX_SANCTION_SECONDS} (a year)`) };
    }
    frame.seconds = seconds;
  }
  return { ok: true, frame };
}

/** A delete, from a socket or over HTTP; whether its sender may is the room's business. */
export function deletion(command: Record<string, unknown>): { ok: true; frame: DeleteRequest } | { ok: false; error: ErrorFrame } {
  const { id } = command;
  const seq = messageSeq(command);
  if (seq === null) return { ok: false, error: BAD_SEQ };
  if (id !== undefined && !isMessageId(id)) return { ok: false, error: BAD_MESSAGE_ID };
  return { ok: true, frame: { type: "delete", seq, ...(id !== undefined && { id }) } };
}

/** A reaction, from a socket or over HTTP. */
export function reaction(command: Record<string, unknown>): { ok: true; frame: ReactionRequest } | { ok: false; error: ErrorFrame } {
  const { type, emoji, id } = command;
  if (type !== "react" && type !== "unreact") return { ok: false, error: errorFrame("bad_message", "a reaction's `type` is react or unreact") };
  const seq = messageSeq(command);
  if (seq === null) return { ok: false, error: BAD_SEQ };
  if (typeof emoji !== "string" || !isReactionEmoji(emoji)) {
    return { ok: false, error: errorFrame("bad_emoji", "`emoji` must be one emoji, or a :short_name: of up to 32 characters") };
  }
  if (id !== undefined && !isMessageId(id)) return { ok: false, error: BAD_MESSAGE_ID };
  return { ok: true, frame: { type, seq, emoji, ...(id !== undefined && { id }) } };
}

function messageSeq(command: Record<string, unknown>): number | null {
  return isSeq(command.seq) ? command.seq : null;
}

function isSeq(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 1;
}

const BAD_SEQ = errorFrame("bad_message", "`seq` must be the seq of a message, a whole number from 1");

function asCommand(data: string): (Record<string, unknown> & { type: string }) | null {
  // Only text that looks like an object is worth a JSON.parse.
  if (!data.trimStart().startsWith("{")) return null;
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    return null;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return null;
  const type = (value as { type?: unknown }).type;
  return typeof type === "string" ? (value as Record<string, unknown> & { type: string }) : null;
}

function chat(raw: string, maxChars: number): Parsed {
  const checked = checkText(raw, maxChars);
  if (!checked.ok) return checked;
  return { ok: true, frame: { type: "message", text: checked.text } };
}

// Controls other than tab and line breaks: ESC in particular would let a
// message drive the terminals of people reading the text format.
const FORBIDDEN_IN_TEXT = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]/;

/**
 * The rules for a message's text, wherever it comes from: trimmed, not
 * empty, at most `maxChars` code points, well-formed Unicode, and no control
 * characters but tab and line breaks. Every line break is stored as `\n`: a
 * carriage return could make a terminal overwrite the line it ends.
 */
export function checkText(raw: string, maxChars: number): { ok: true; text: string } | { ok: false; error: ErrorFrame } {
  const text = raw.trim().replace(/\r\n?/g, "\n");
  if (text === "") return { ok: false, error: errorFrame("empty_message", "empty messages are not sent") };
  if (text.length > maxChars && [...text].length > maxChars) {
    return { ok: false, error: errorFrame("too_long", `messages are at most ${maxChars} characters`) };
  }
  if (!text.isWellFormed()) return { ok: false, error: errorFrame("bad_message", "the text is not valid Unicode") };
  if (FORBIDDEN_IN_TEXT.test(text)) {
    return { ok: false, error: errorFrame("bad_message", "the text must not contain control characters") };
  }
  return { ok: true, text };
}

/**
 * A search's query, from a socket or over HTTP: trimmed, then 1 to
 * `MAX_QUERY_CHARS` characters. Whether FTS5 can read it is the room's to say.
 */
export function searchQuery(raw: unknown): { ok: true; q: string } | { ok: false; error: ErrorFrame } {
  const q = typeof raw === "string" ? raw.trim() : "";
  if (q === "" || (q.length > MAX_QUERY_CHARS && [...q].length > MAX_QUERY_CHARS)) {
    return { ok: false, error: errorFrame("bad_query", `a search needs \`q\`: words to look for, 1 to ${MAX_QUERY_CHARS} characters`) };
  }
  return { ok: true, q };
}

/** A client's own id for one message, echoed in its `ack` and used to drop resends. */
export function isMessageId(id: unknown): id is string {
  return typeof id === "string" && id.length >= 1 && id.length <= MAX_MESSAGE_ID_CHARS;
}

export const BAD_MESSAGE_ID = errorFrame("bad_message", `\`id\` must be a string of 1 to ${MAX_MESSAGE_ID_CHARS} characters`);

function fail(code: ErrorCode, message: string): Parsed {
  return { ok: false, error: errorFrame(code, message) };
}
