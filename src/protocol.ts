/**
 * The wire protocol: every frame the room sends or accepts, how client frames
 * are parsed, and how server frames are written in each format. This module
 * is the only place that knows the protocol; docs/protocol.md describes it.
 */

export type Format = "json" | "text";

export interface User {
  id: string;
  name: string;
}

/** Why a user left: they closed, the heartbeat sweep closed them, or their socket failed. */
export type LeaveReason = "closed" | "timeout" | "error";

export type ErrorCode =
  | "bad_message"
  | "empty_message"
  | "unknown_type"
  | "unsupported"
  | "internal";

export type WelcomeFrame = {
  type: "welcome";
  room: string;
  you: User;
  users: User[];
  tickSeconds: number;
  at: number;
};
export type JoinFrame = { type: "join"; user: User; online: number; at: number };
export type LeaveFrame = { type: "leave"; user: User; online: number; reason: LeaveReason; at: number };
export type MessageFrame = { type: "message"; user: User; text: string; at: number };
export type AckFrame = { type: "ack"; id: string };
export type UsersFrame = { type: "users"; users: User[]; online: number };
export type TickFrame = { type: "tick"; now: number; online: number };
export type ErrorFrame = { type: "error"; code: ErrorCode; message: string };

export type ServerFrame =
  | WelcomeFrame
  | JoinFrame
  | LeaveFrame
  | MessageFrame
  | AckFrame
  | UsersFrame
  | TickFrame
  | ErrorFrame;

export type ClientFrame = { type: "message"; text: string; id?: string } | { type: "who" };

export type Parsed = { ok: true; frame: ClientFrame } | { ok: false; error: ErrorFrame };

export const MAX_CLIENT_ID_CHARS = 64;

/**
 * Reads one client text frame. Only a JSON object with a string `type` is a
 * command; any other text, JSON or not, is a chat message as typed, so raw
 * WebSocket clients can chat without knowing the protocol.
 */
export function parseClientFrame(data: string): Parsed {
  const command = asCommand(data);
  if (command === null) return chat(data);
  switch (command.type) {
    case "message": {
      const { text, id } = command;
      if (typeof text !== "string") return fail("bad_message", "a message needs a string `text`");
      if (id !== undefined && !isClientId(id)) {
        return fail("bad_message", `\`id\` must be a string of 1 to ${MAX_CLIENT_ID_CHARS} characters`);
      }
      return chat(text, id);
    }
    case "who":
      return { ok: true, frame: { type: "who" } };
    default:
      return fail("unknown_type", `unknown frame type ${JSON.stringify(command.type).slice(0, 80)}`);
  }
}

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

function chat(raw: string, id?: string): Parsed {
  const text = raw.trim();
  if (text === "") return fail("empty_message", "empty messages are not sent");
  return { ok: true, frame: id === undefined ? { type: "message", text } : { type: "message", text, id } };
}

function isClientId(id: unknown): id is string {
  return typeof id === "string" && id.length >= 1 && id.length <= MAX_CLIENT_ID_CHARS;
}

function fail(code: ErrorCode, message: string): Parsed {
  return { ok: false, error: { type: "error", code, message } };
}

export function errorFrame(code: ErrorCode, message: string): ErrorFrame {
  return { type: "error", code, message };
}

/** Renders a frame as a line for people in a terminal, in the original chat's words. */
export function toText(frame: ServerFrame): string {
  switch (frame.type) {
    case "welcome":
      return `Welcome to the chat room ${frame.room}! You are ${frame.you.name}. Online: ${names(frame.users)}`;
    case "join":
      return `${frame.user.name} entered the chat room.`;
    case "leave":
      return `${frame.user.name} left the chat room.`;
    case "message":
      return `${frame.user.name}: ${frame.text}`;
    case "ack":
      return `ack: ${frame.id}`;
    case "users":
      return `Online: ${names(frame.users)}`;
    case "tick":
      return `Time: ${new Date(frame.now).toISOString()}. Online: ${frame.online}`;
    case "error":
      return `error: ${frame.message}`;
  }
}

function names(users: User[]): string {
  return users.map((u) => u.name).join(", ");
}

/**
 * One server frame, encoded at most once per format however many sockets it
 * goes to.
 */
export class Outgoing {
  #json: string | undefined;
  #text: string | undefined;

  constructor(readonly frame: ServerFrame) {}

  in(format: Format): string {
    if (format === "json") return (this.#json ??= JSON.stringify(this.frame));
    return (this.#text ??= toText(this.frame));
  }
}
