// What clients send the room: the shapes that `parse.ts` reads their frames into.

import type { Sanction } from "./frames";

/**
 * Every frame a client may send. Each may carry an `id` (1 to 64
 * characters), which its answer carries back; for a message, an edit or a
 * delete the id also makes a resend harmless.
 */
export type ClientFrame =
  | MessageRequest
  | TypingRequest
  | ReactionRequest
  | ThreadRequest
  | ReadRequest
  | SearchRequest
  | { type: "rename"; name: string; id?: string }
  | { type: "who"; after?: string; id?: string }
  | { type: "history"; after: number; id?: string }
  | { type: "token"; token: string; id?: string }
  | BatchingRequest
  | EditRequest
  | DeleteRequest
  | ModerationFrame;

/** Asks for `batch` frames while the room is busy (`on: true`) or for every frame by itself, as `?batch=1` or its absence does at join. */
export type BatchingRequest = { type: "batching"; on: boolean; id?: string };
/** A message; with `replyTo`, a reply to message `replyTo`. */
export type MessageRequest = { type: "message"; text: string; replyTo?: number; id?: string };
/** Its sender is typing, or with `stop`, no longer; a message stops it too, and it stops by itself after `typingSeconds`. */
export type TypingRequest = { type: "typing"; stop?: true; id?: string };
/** Adds or takes back the sender's reaction `emoji` to message `seq`; `id` as for a message. */
export type ReactionRequest = { type: "react" | "unreact"; seq: number; emoji: string; id?: string };
/** The replies to message `seq` after reply `after` (0 or absent: from the first). */
export type ThreadRequest = { type: "thread"; seq: number; after?: number; id?: string };

/** The sender's account has read up to message `seq`; a lower one than before changes nothing. */
export type ReadRequest = { type: "read"; seq: number; id?: string };
/** Messages whose text matches `q` (SQLite FTS5 syntax), newest first, older than `before` if set. */
export type SearchRequest = { type: "search"; q: string; before?: number; id?: string };

/** An author's new text for their message `seq`; `id` as for a message, answered by an `ack` of the edit's seq. */
export type EditRequest = { type: "edit"; seq: number; text: string; id?: string };
/** Deletes message `seq`: an author's own, or any for a moderator. */
export type DeleteRequest = { type: "delete"; seq: number; id?: string };

/** A moderator's action on the user with this id; `seconds` for a ban or mute. */
export type ModerationFrame = { type: Sanction; user: string; seconds?: number; id?: string };
