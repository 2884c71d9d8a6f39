/**
 * Every frame the room sends, the close and error codes, and the limits
 * the protocol fixes: the types that the server, the page, ChatClient and
 * the terminal chat share. What clients send is in `requests.ts`, what the
 * HTTP API answers in `http.ts`. docs/protocol.md describes them all.
 */

export type Format = "json" | "text";

/**
 * Someone in the room as clients see them: one connection (`id`), and what
 * the room shows of who is behind it. The server keeps a connection as a
 * `Member` on its socket and an `Entry` in the room's roster.
 */
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
  | "bad_emoji"
  | "bad_query"
  | "too_many_reactions"
  | "unknown_type"
  | "unsupported"
  | "account_required"
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
 * The WebSocket standard's codes that peers of the room name besides its
 * own: a close by choice, and what a WebSocket reports for a connection
 * that ended without a close frame (never sent in one).
 */
export const WEBSOCKET_CLOSE = { normal: 1000, abnormal: 1006 } as const;

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
  /** `typing` frames per 10 s, a budget of their own: typing never takes from the frames above. 0 for no limit. */
  typingPer10s: number;
  /** `react` and `unreact` frames per 10 s, a budget of their own, as for typing. 0 for no limit. */
  reactionsPer10s: number;
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
  /** How long someone stays in the typing set without sending `typing` again. */
  typingSeconds: number;
  limits: Limits;
  /** The newest number in the room's sequence (a message's seq, or an edit's or delete's change); 0 in a room that never had one. */
  lastSeq: number;
  /** Names the room's history; resume with `?epoch=` so that a history lost since is noticed. */
  epoch: string;
  /** How far this connection's account has read (see `ReadFrame`); 0 when it has not. */
  read: number;
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
 * everyone: its messages, and the edits, deletes and reactions of them,
 * which take the next number as their `change`. Only a history frame (or a
 * page or thread) shows a message as it is now: with `editedAt` once
 * edited, with `deletedAt` and empty text once deleted, with its
 * `reactions` and how many `replies` it has had.
 */
export type MessageFrame = {
  type: "message";
  seq: number;
  user: User;
  text: string;
  at: number;
  editedAt?: number;
  deletedAt?: number;
  /** The message this one answers. */
  replyTo?: ReplyTo;
  /** Who the text mentions, as `@name`; resolved by the room when it stored the message. */
  mentions?: Mention[];
  /** Messages that reply to this one; live, each reply's `replyTo` counts one more. */
  replies?: number;
  reactions?: Reaction[];
};
/** What a reply shows of the message it answers, as of the reply: its author and its first `REPLY_EXCERPT_CHARS` characters. */
export interface ReplyTo {
  seq: number;
  user: User;
  /** Empty once that message was deleted. */
  text: string;
  /** That message was deleted since, its excerpt with it. */
  deleted?: true;
}
/** Someone a message mentions: `id` is their connection when mentioned (or the last one, for an account not online). */
export interface Mention {
  id: string;
  name: string;
  /** A token account's `sub`: the same person on any connection. */
  account?: string;
}
/** One emoji's reactions to a message: how many people, and the ids of the first `REACTION_USERS_SHOWN` of them. */
export interface Reaction {
  emoji: string;
  count: number;
  users: string[];
}
/** Message `seq`, by `user`, now reads `text`, which mentions `mentions`. `change` is the edit's own place in the sequence. */
export type EditFrame = { type: "edit"; seq: number; change: number; user: User; text: string; editedAt: number; mentions?: Mention[] };
/** Message `seq` was deleted, by its author or a moderator; its text and reactions are gone. `change` is the delete's own place in the sequence. */
export type DeleteFrame = { type: "delete"; seq: number; change: number; deletedAt: number };
/**
 * Message `seq`'s reactions now: the whole summary, after `user` added (or
 * with `removed`, took back) `emoji`. `author` wrote the message, while it
 * is kept. `change` is the reaction's own place in the sequence.
 */
export type ReactionsFrame = {
  type: "reactions";
  seq: number;
  change: number;
  reactions: Reaction[];
  user: User;
  emoji: string;
  removed?: true;
  author?: User;
};
export type ChangeFrame = EditFrame | DeleteFrame | ReactionsFrame;
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
    case "reactions":
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
/**
 * Who is typing now, sent when that changes, coalesced like presence:
 * the first `TYPING_USERS_SHOWN` of them in the order they began, and how
 * many in all. `started` lists who began since the last typing frame, the
 * first `TYPING_USERS_SHOWN` of them. Never stored.
 */
export type TypingFrame = { type: "typing"; users: User[]; count: number; started: User[] };
/**
 * The answer to a `thread` request: message `seq` as it is now, and the
 * replies to it after `after`, in order; `more`: ask again with `after`
 * set to the last reply's seq.
 */
export type ThreadFrame = { type: "thread"; id?: string; seq: number; root: MessageFrame; messages: MessageFrame[]; more: boolean };
/**
 * This connection's account has read up to `seq`, on another of its
 * connections: a second device clears its unread marker.
 */
export type ReadFrame = { type: "read"; seq: number };
/** How far people in a small room have read, for those whose position moved since the last such frame. */
export type ReceiptsFrame = { type: "receipts"; receipts: Receipt[] };
/** Someone in the room, and the newest seq their account has read. */
export interface Receipt {
  user: User;
  seq: number;
}
/**
 * The answer to a `search`: messages whose text matches `q`, newest
 * first; `more`: ask again with `before` set to the last result's seq.
 * `partial`: the room is still indexing messages stored before it could
 * search, so older ones may be missing; it indexes more each time it wakes.
 */
export type SearchFrame = { type: "search"; id?: string; q: string; results: SearchResult[]; more: boolean; partial?: true };
/** A message found by a search, as it is now, with the matching words marked in `snippet`. */
export interface SearchResult {
  seq: number;
  user: User;
  text: string;
  at: number;
  /** The text around the match, the matched words between `[` and `]`, cut with `…`. */
  snippet: string;
}
/** The answer to a `token` frame that renewed the socket's token: it now lasts until `exp` (seconds since the epoch). */
export type RenewedFrame = { type: "renewed"; id?: string; exp: number };
/**
 * The answer to a `batching` request: whether the socket now takes
 * `batch` frames. Everything after this frame follows the new setting.
 */
export type BatchingFrame = { type: "batching"; id?: string; on: boolean };
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
  | ReactionsFrame
  | TypingFrame
  | ThreadFrame
  | ReadFrame
  | ReceiptsFrame
  | SearchFrame
  | HistoryFrame
  | AckFrame
  | UsersFrame
  | TickFrame
  | RenewedFrame
  | RenamedFrame
  | BatchingFrame
  | ModeratedFrame
  | ErrorFrame
  | ClosingFrame;

/**
 * Several frames in one, in the order they would have come one by one:
 * what a socket that opted in (`?batch=1`, or a `batching` request) gets
 * while its room is busy. Never empty, never nested; a lone frame comes
 * as itself. In the text format a busy room instead puts several lines in
 * one WebSocket message.
 */
export type BatchFrame = { type: "batch"; frames: ServerFrame[] };

/** What one WebSocket message from the room may hold: a frame, or a batch of them. */
export type WireFrame = ServerFrame | BatchFrame;

export function errorFrame(code: ErrorCode, message: string): ErrorFrame {
  return { type: "error", code, message };
}

/** The last seq a history frame covers: its last message's, or its last change's. */
export function lastPosition(frame: Pick<HistoryFrame, "messages" | "changes">): number {
  return Math.max(frame.messages.at(-1)?.seq ?? 0, frame.changes.at(-1)?.change ?? 0);
}
