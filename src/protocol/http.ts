/**
 * What the HTTP API answers with: the bodies of its errors and of each
 * route, beside the frames they mirror. docs/protocol.md lists the routes.
 */

import type { ChangeFrame, MessageFrame, SearchFrame, ThreadFrame, User } from "./frames";

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

/** `GET /api/rooms/<room>/search?q=`: as a search frame. */
export type SearchPage = Omit<SearchFrame, "type" | "id">;

/** One of a person's rooms in `GET /api/me/rooms`: its newest seq, how far they read, and what they have not. */
export interface MyRoom {
  room: string;
  lastSeq: number;
  /** When the newest message arrived (epoch ms); null in a room without one. */
  lastAt: number | null;
  read: number;
  /** Messages after `read` by others. */
  unread: number;
  /** Of those, the ones that mention this person. */
  mentions: number;
  /** For a direct message: the other person's `sub`. */
  with?: string;
}

/** `GET /api/me/rooms`: newest activity first. */
export interface MyRooms {
  rooms: MyRoom[];
}

/** `POST /api/dms`: the private room of two accounts, the same whichever asks. */
export interface DirectRoom {
  room: string;
  url: string;
  wsUrl: string;
  with: string;
}

/** `GET /api/rooms/<room>/messages?thread=<seq>`: as a thread frame. */
export type ThreadPage = Omit<ThreadFrame, "type" | "id">;
