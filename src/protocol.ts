/**
 * The wire protocol: every frame the room sends or accepts, how client frames
 * are parsed, and how server frames are written in each format. This module
 * is the only place that knows the protocol; docs/protocol.md describes it.
 */

import { checkDisplayName } from "./names";

export type Format = "json" | "text";

export interface User {
  id: string;
  name: string;
  /** Present when a token vouches for the name. */
  verified?: true;
  /** The token's `sub`: the same person, however often they connect. */
  account?: string;
  /** Present when their token makes them a moderator, as of when they joined or renewed it. */
  moderator?: true;
}

/**
 * Why a user left: they closed, the heartbeat sweep, the flood guard or
 * their token's expiry closed them, a moderator kicked or banned them, or
 * their socket failed.
 */
export type LeaveReason = "closed" | "timeout" | "flood" | "expired" | "kicked" | "banned" | "error";

export type ErrorCode =
  | "bad_message"
  | "empty_message"
  | "too_long"
  | "too_large"
  | "bad_name"
  | "rename_not_allowed"
  | "rate_limited"
  | "id_conflict"
  | "bad_token"
  | "token_expired"
  | "forbidden"
  | "unknown_user"
  | "muted"
  | "banned"
  | "unknown_message"
  | "unknown_type"
  | "unsupported"
  | "auth_unavailable"
  | "internal";

/**
 * The close codes the room sends, each after a `closing` frame that says
 * the same in words: a client that never sent a frame may learn of the
 * close itself only much later (see `ClosingFrame`).
 */
export const CLOSE = {
  /** The heartbeat sweep found the socket silent; reconnecting is fine. */
  timeout: 4000,
  /** A moderator removed the user; coming back by itself would undo that. */
  kicked: 4001,
  /** The token expired without being renewed; come back with a new one. */
  expired: 4002,
  /** A moderator banned the user. */
  banned: 4003,
  /** The socket kept sending faster than its limit. */
  flood: 1008,
  /** The room could not place the socket now; reconnect and resume. */
  tryAgain: 1013,
} as const;
export type CloseCode = (typeof CLOSE)[keyof typeof CLOSE];
export type ClosingReason = keyof typeof CLOSE;

/**
 * The WebSocket subprotocol the room speaks. A client may offer its token
 * as a second subprotocol, `token.<JWT>`, where no URL log records it; the
 * room then answers with this one.
 */
export const SUBPROTOCOL = "edge-chat";
export const TOKEN_SUBPROTOCOL_PREFIX = "token.";

/** What a socket may send, from the welcome, so that a client can pace itself instead of being refused. */
export interface Limits {
  /** Frames per 10 s, and the burst a fresh socket may send at once; 0 for no limit. */
  framesPer10s: number;
  /** Bytes one frame may have. */
  frameBytes: number;
  /** Characters (code points) one message's text may have. */
  messageChars: number;
}

/**
 * `users` lists everyone online in join order, you included, up to
 * `PRESENCE_LIST_LIMIT`; `more` says the list stops there: page through the
 * rest with `{"type":"who","after":<the last id in it>}`.
 */
export type WelcomeFrame = {
  type: "welcome";
  room: string;
  you: User;
  users: User[];
  more: boolean;
  online: number;
  tickSeconds: number;
  limits: Limits;
  /** The newest number in the room's sequence (a message's seq, or an edit's or delete's change); 0 in a room that never had one. */
  lastSeq: number;
  /** Names the room's history; resume with `?epoch=` so that a history lost since is noticed. */
  epoch: string;
  at: number;
};
/**
 * Who came, went or changed their name since the last one: everything that
 * happened within one batch window, in one frame. Apply `joined`, then
 * `renamed`, then `left`: one person's events always happen in that order.
 * In a room of more than `ANNOUNCE_LIMIT` people the lists are empty and
 * only `online` is news.
 */
export type PresenceFrame = {
  type: "presence";
  joined: User[];
  left: Array<{ user: User; reason: LeaveReason }>;
  renamed: Array<{ user: User; from: string }>;
  online: number;
  at: number;
};
/**
 * `seq` numbers the room's sequence, 1, 2, 3, … the same order for
 * everyone: its messages, and the edits and deletes of them, which take
 * the next number as their `change`. Only a history frame shows a message
 * as it is now: with `editedAt` once edited, or with `deletedAt` and empty
 * text once deleted.
 */
export type MessageFrame = { type: "message"; seq: number; user: User; text: string; at: number; editedAt?: number; deletedAt?: number };
/** Message `seq`, by `user`, now reads `text`. `change` is the edit's own place in the sequence. */
export type EditFrame = { type: "edit"; seq: number; change: number; user: User; text: string; editedAt: number };
/** Message `seq` was deleted, by its author or a moderator; its text is gone. `change` is the delete's own place in the sequence. */
export type DeleteFrame = { type: "delete"; seq: number; change: number; deletedAt: number };
export type ChangeFrame = EditFrame | DeleteFrame;
/** What the room's sequence holds at each number. */
export type SequenceFrame = MessageFrame | ChangeFrame;

/** A frame's place in the room's sequence, or null for frames outside it. */
export function positionOf(frame: SequenceFrame): number;
export function positionOf(frame: ServerFrame): number | null;
export function positionOf(frame: ServerFrame): number | null {
  switch (frame.type) {
    case "message":
      return frame.seq;
    case "edit":
    case "delete":
      return frame.change;
    default:
      return null;
  }
}
/**
 * Sent after the welcome, and in answer to a `history` request: the recent
 * messages, or on a resume the messages after `since` (or `after`), as they
 * are now, and in `changes` the edits and deletes made since of messages
 * up to `since`, which the client already has. Every change reaches a
 * client once: in `changes`, live, or already applied to a message it gets.
 * `gap`: some of those were already trimmed (the oldest kept is
 * `oldestSeq`). `reset`: the history the client resumed from is gone
 * (`since` was ahead of the room, or `epoch` names another history); the
 * frame carries the recent messages instead. `more`: the frame stopped at
 * its size limit; ask for the rest with `{"type":"history","after":<the
 * frame's last seq, a message's `seq` or a change's `change`>}`. What is
 * stored after the welcome arrives live meanwhile.
 */
export type HistoryFrame = {
  type: "history";
  /** The `id` of the `history` request this answers; absent on the history after a welcome. */
  id?: string;
  messages: MessageFrame[];
  changes: ChangeFrame[];
  oldestSeq: number;
  lastSeq: number;
  gap: boolean;
  reset: boolean;
  more: boolean;
  epoch: string;
};
export type AckFrame = { type: "ack"; id: string; seq: number };
/**
 * The answers below carry the `id` of the request they answer, when it had
 * one, as `ack` does: answers come in the order of the frames they answer,
 * and the id lets a client pair them without counting on it.
 */
/** One page of the user list, in join order; `more`: ask for the next with `after`. */
export type UsersFrame = { type: "users"; id?: string; users: User[]; online: number; more: boolean };
export type TickFrame = { type: "tick"; now: number; online: number };
/** The answer to a `token` frame that renewed the socket's token: it now lasts until `exp` (seconds since the epoch). */
export type RenewedFrame = { type: "renewed"; id?: string; exp: number };
/** The answer to a `rename`: who you are now, and your name before. Everyone else learns it from `presence`. */
export type RenamedFrame = { type: "renamed"; id?: string; user: User; from: string };
/** What moderators may do to someone. */
export type Sanction = "kick" | "ban" | "unban" | "mute" | "unmute";
/** The answer to a moderator's action: done, to `user`, and until when for a ban or mute (epoch ms). */
export type ModeratedFrame = { type: "moderated"; id?: string; action: Sanction; user: User; until?: number };
/**
 * `retryAfterMs` comes with `rate_limited` and `auth_unavailable` only;
 * `until` (epoch ms) with `muted`. `id` names the frame refused, when the
 * room read it (a frame refused for its rate or size is not read).
 */
export type ErrorFrame = { type: "error"; id?: string; code: ErrorCode; message: string; retryAfterMs?: number; until?: number };
/**
 * The last frame before a close the room decided: the close code and why,
 * in words, and for a ban until when (epoch ms). The close frame itself
 * may reach a client late (locally, a socket that never sent a frame sees
 * it only when the object hibernates), so clients act on this one.
 */
export type ClosingFrame = { type: "closing"; code: CloseCode; reason: ClosingReason; message: string; until?: number };

export function closing<R extends ClosingReason>(reason: R, message: string, until?: number): ClosingFrame & { reason: R } {
  return { type: "closing", code: CLOSE[reason], reason, message, ...(until !== undefined && { until }) };
}

export type ServerFrame =
  | WelcomeFrame
  | PresenceFrame
  | MessageFrame
  | EditFrame
  | DeleteFrame
  | HistoryFrame
  | AckFrame
  | UsersFrame
  | TickFrame
  | RenewedFrame
  | RenamedFrame
  | ModeratedFrame
  | ErrorFrame
  | ClosingFrame;

/** The body of every HTTP error: a stable `code`, words for people, and for a 429 when to retry. */
export interface ErrorBody {
  code: string;
  message: string;
  retryAfterMs?: number;
  /** For `banned` and `muted`: until when (epoch ms). */
  until?: number;
}

/** Why a request is refused: its HTTP status and error body. */
export interface Refusal extends ErrorBody {
  status: number;
}

/** `GET /api/rooms/<room>` */
export interface RoomInfo {
  room: string;
  online: number;
  users: User[];
  lastSeq: number;
  /** How many Durable Objects hold the room's sockets: the room itself and its shards. */
  objects: number;
}

/** `GET /api/rooms/<room>/messages` */
export interface MessagePage {
  messages: MessageFrame[];
  /** With `since`: the edits and deletes after it of messages up to it, as in a history frame. */
  changes: ChangeFrame[];
  oldestSeq: number;
  lastSeq: number;
  gap: boolean;
  /** The history's epoch, as in `welcome`; null for a room that has never stored anything. */
  epoch: string | null;
}

/**
 * Every frame a client may send. Each may carry an `id` (1 to 64
 * characters), which its answer carries back; for a message, an edit or a
 * delete the id also makes a resend harmless.
 */
export type ClientFrame =
  | { type: "message"; text: string; id?: string }
  | { type: "rename"; name: string; id?: string }
  | { type: "who"; after?: string; id?: string }
  | { type: "history"; after: number; id?: string }
  | { type: "token"; token: string; id?: string }
  | EditRequest
  | DeleteRequest
  | ModerationFrame;

/** An author's new text for their message `seq`; `id` as for a message, answered by an `ack` of the edit's seq. */
export type EditRequest = { type: "edit"; seq: number; text: string; id?: string };
/** Deletes message `seq`: an author's own, or any for a moderator. */
export type DeleteRequest = { type: "delete"; seq: number; id?: string };

/** A moderator's action on the user with this id; `seconds` for a ban or mute. */
export type ModerationFrame = { type: Sanction; user: string; seconds?: number; id?: string };

/** The longest ban or mute: a year. */
export const MAX_SANCTION_SECONDS = 365 * 24 * 3600;
const SANCTIONS: readonly string[] = ["kick", "ban", "unban", "mute", "unmute"] satisfies Sanction[];

export type Parsed = { ok: true; frame: ClientFrame } | { ok: false; error: ErrorFrame };

export const MAX_MESSAGE_ID_CHARS = 64;

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
      const { text } = command;
      if (typeof text !== "string") return fail("bad_message", "a message needs a string `text`");
      return chat(text, maxMessageChars);
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

function messageSeq(command: Record<string, unknown>): number | null {
  const { seq } = command;
  return typeof seq === "number" && Number.isSafeInteger(seq) && seq >= 1 ? seq : null;
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

/** A client's own id for one message, echoed in its `ack` and used to drop resends. */
export function isMessageId(id: unknown): id is string {
  return typeof id === "string" && id.length >= 1 && id.length <= MAX_MESSAGE_ID_CHARS;
}

export const BAD_MESSAGE_ID = errorFrame("bad_message", `\`id\` must be a string of 1 to ${MAX_MESSAGE_ID_CHARS} characters`);

function fail(code: ErrorCode, message: string): Parsed {
  return { ok: false, error: errorFrame(code, message) };
}

export function errorFrame(code: ErrorCode, message: string): ErrorFrame {
  return { type: "error", code, message };
}

/**
 * Renders a frame as a line for people in a terminal, in the original chat's
 * words; a history is one line per message, and an empty one is not sent.
 * A message's own line breaks start indented lines: no name or notice
 * starts with a space, so a message cannot pass off a line as anyone else's.
 */
export function toText(frame: ServerFrame): string | null {
  switch (frame.type) {
    case "welcome":
      return `Welcome to the chat room ${frame.room}! You are ${frame.you.name}. Online: ${listed(frame.users, frame.online)}`;
    case "presence":
      return presenceText(frame);
    case "message":
    case "edit":
    case "delete":
      return messageText(frame);
    case "history":
      return historyText(frame);
    case "ack":
      return `ack: ${frame.id} (#${frame.seq})`;
    case "users": {
      const line = `Online: ${listed(frame.users, frame.online)}`;
      return frame.more ? `${line} (send {"type":"who","after":"${frame.users.at(-1)!.id}"} for more)` : line;
    }
    case "tick":
      return `Time: ${new Date(frame.now).toISOString()}. Online: ${frame.online}`;
    case "renewed":
      return `Your token now lasts until ${new Date(frame.exp * 1000).toISOString()}.`;
    case "renamed":
      return `You are now known as ${frame.user.name}.`;
    case "moderated":
      return moderatedText(frame);
    case "error":
      return `error: ${frame.message}`;
    case "closing":
      return `Disconnected: ${frame.message}.`;
  }
}

/** A message, or a change to one, as its line: an edited message shows its new text, a deleted one only that it was. */
function messageText(frame: SequenceFrame): string {
  if (frame.type === "delete" || (frame.type === "message" && frame.deletedAt !== undefined)) return DELETED;
  const edited = frame.type === "edit" || frame.editedAt !== undefined ? " (edited)" : "";
  return `${frame.user.name}${edited}: ${frame.text.replaceAll("\n", `\n${CONTINUATION}`)}`;
}

const DELETED = "(a message was deleted)";

/** What starts each further line of a message in the text format. */
export const CONTINUATION = "  ";

function historyText(frame: HistoryFrame): string | null {
  const lines = [...frame.messages, ...frame.changes].map(messageText);
  if (frame.reset) lines.unshift("(the room's history was reset; here are its latest messages)");
  else if (frame.gap) lines.unshift("(some messages you missed are no longer kept)");
  if (frame.more) lines.push(`(more messages follow; send {"type":"history","after":${lastPosition(frame)}} for them)`);
  return lines.length === 0 ? null : lines.join("\n");
}

/** The last seq a history frame covers: its last message's, or its last change's. */
export function lastPosition(frame: Pick<HistoryFrame, "messages" | "changes">): number {
  return Math.max(frame.messages.at(-1)?.seq ?? 0, frame.changes.at(-1)?.change ?? 0);
}

/** Everyone listed, and how many more are online than the list holds. */
function listed(users: User[], online: number): string {
  const names = users.map((u) => u.name).join(", ");
  return online > users.length ? `${names} and ${online - users.length} more` : names;
}

/** Names in a sentence: `ann`, `ann and bob`, `ann, bob and cat`, `ann, bob and 3 others`. */
function some(names: string[]): string {
  if (names.length <= 3) return names.length === 1 ? names[0]! : `${names.slice(0, -1).join(", ")} and ${names.at(-1)}`;
  return `${names.slice(0, 2).join(", ")} and ${names.length - 2} others`;
}

const DONE: Record<Sanction, string> = { kick: "kicked", ban: "banned", unban: "unbanned", mute: "muted", unmute: "unmuted" };

function moderatedText({ action, user, until }: ModeratedFrame): string {
  return `Done: ${user.name} was ${DONE[action]}${until === undefined ? "" : ` until ${new Date(until).toISOString()}`}.`;
}

/** One line for a whole batch, in the order its events are applied. */
function presenceText({ joined, renamed, left, online }: PresenceFrame): string {
  const parts: string[] = [];
  if (joined.length > 0) parts.push(`${some(joined.map((u) => u.name))} entered the chat room.`);
  const shown = renamed.length <= 3 ? renamed : renamed.slice(0, 2);
  for (const { user, from } of shown) parts.push(`${from} is now known as ${user.name}.`);
  if (shown.length < renamed.length) parts.push(`${renamed.length - shown.length} others changed their names.`);
  const removed = (reason: LeaveReason) => left.filter((l) => l.reason === reason).map((l) => l.user.name);
  const gone = left.filter((l) => l.reason !== "kicked" && l.reason !== "banned").map((l) => l.user.name);
  if (gone.length > 0) parts.push(`${some(gone)} left the chat room.`);
  for (const reason of ["kicked", "banned"] as const) {
    const names = removed(reason);
    if (names.length > 0) parts.push(`${some(names)} ${names.length === 1 ? "was" : "were"} ${reason}.`);
  }
  if (parts.length === 0) return `Online: ${online}`;
  return parts.join(" ");
}

/**
 * One server frame, encoded at most once per format however many sockets it
 * goes to.
 */
export class Outgoing {
  #json: string | undefined;
  #text: string | null | undefined;

  constructor(readonly frame: ServerFrame) {}

  /** The frame's wire text in `format`, or null when there is nothing to send in it. */
  in(format: Format): string | null {
    if (format === "json") return (this.#json ??= JSON.stringify(this.frame));
    if (this.#text === undefined) this.#text = toText(this.frame);
    return this.#text;
  }
}
