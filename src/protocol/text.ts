/**
 * Server frames as they go out: the text format's lines, for people in a
 * terminal, and each frame encoded once per format.
 */

import {
  type Format,
  type HistoryFrame,
  type LeaveReason,
  type ModeratedFrame,
  type PresenceFrame,
  type ReactionsFrame,
  type ReplyTo,
  type SearchFrame,
  type ThreadFrame,
  type Sanction,
  type SequenceFrame,
  type ServerFrame,
  type User,
  lastPosition,
} from "./frames";

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
    case "reactions":
      return messageText(frame);
    case "typing":
      return frame.started.length === 0 ? null : `${some(frame.started.map((u) => u.name))} ${frame.started.length === 1 ? "is" : "are"} typing…`;
    case "thread":
      return threadText(frame);
    case "search":
      return searchText(frame);
    case "read":
    case "receipts":
      // What another device of yours read, or others: nothing a person at a terminal acts on.
      return null;
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
    case "batching":
      return frame.on ? "While the room is busy, several lines may now come in one message." : "Each line now comes in a message of its own.";
    case "moderated":
      return moderatedText(frame);
    case "error":
      return `error: ${frame.message}`;
    case "closing":
      return `Disconnected: ${frame.message}.`;
  }
}

/**
 * A message, or a change to one, as its line: an edited message shows its
 * new text, a deleted one only that it was, a reply the start of what it
 * answers.
 */
function messageText(frame: SequenceFrame): string {
  if (frame.type === "delete" || (frame.type === "message" && frame.deletedAt !== undefined)) return DELETED;
  if (frame.type === "reactions") return reactionText(frame);
  const edited = frame.type === "edit" || frame.editedAt !== undefined ? " (edited)" : "";
  const reply = frame.type === "message" && frame.replyTo !== undefined ? ` (replying to ${quoted(frame.replyTo)})` : "";
  return `${frame.user.name}${edited}${reply}: ${indented(frame.text)}`;
}

function indented(text: string): string {
  return text.replaceAll("\n", `\n${CONTINUATION}`);
}

/** A reply's excerpt on one line: its own line breaks would start lines that pass for someone else's. */
function quoted({ user, text, deleted }: ReplyTo): string {
  return deleted ? "a deleted message" : `${user.name}: ${JSON.stringify(text.replaceAll("\n", " "))}`;
}

function reactionText({ user, emoji, removed, author, seq }: ReactionsFrame): string {
  const whose = author === undefined ? `message #${seq}` : `${author.name}'s message`;
  return removed ? `${user.name} took back ${emoji} from ${whose}` : `${user.name} reacted ${emoji} to ${whose}`;
}

function searchText({ q, results, more }: SearchFrame): string {
  if (results.length === 0) return `Nothing found for ${JSON.stringify(q)}.`;
  const lines = [`Found for ${JSON.stringify(q)}:`, ...results.map((r) => `${CONTINUATION}#${r.seq} ${r.user.name}: ${r.snippet.replaceAll("\n", " ")}`)];
  if (more) lines.push(`(more results follow; send {"type":"search","q":${JSON.stringify(q)},"before":${results.at(-1)!.seq}} for them)`);
  return lines.join("\n");
}

function threadText(frame: ThreadFrame): string {
  const lines = [`Thread of #${frame.seq}: ${messageText(frame.root)}`, ...frame.messages.map((m) => `${CONTINUATION}#${m.seq} ${messageText(m)}`)];
  if (frame.messages.length === 0) lines.push(`${CONTINUATION}(no replies)`);
  if (frame.more) lines.push(`(more replies follow; send {"type":"thread","seq":${frame.seq},"after":${frame.messages.at(-1)!.seq}} for them)`);
  return lines.join("\n");
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
    if (format === "json") {
      this.#json ??= JSON.stringify(this.frame);
      return this.#json;
    }
    if (this.#text === undefined) this.#text = toText(this.frame);
    return this.#text;
  }
}
