/**
 * How a row of the room's sequence reads as the frame it stands for: what
 * `History` selects, and the message, edit, delete or reaction it makes.
 */

import type { ChangeFrame, MessageFrame, SequenceFrame, User } from "../protocol";
import type { ChangeKind } from "./history";

export type Row = {
  seq: number;
  user_id: string;
  user_name: string;
  /** The author's token `sub`, which only a verified user has. */
  user_account: string | null;
  text: string;
  at: number;
  kind: ChangeKind | null;
  target: number | null;
  edited_at: number | null;
  deleted_at: number | null;
  reply: string | null;
  replies: number | null;
  reactions: string | null;
  mentions: string | null;
  /** For a reaction: who wrote the message reacted to, while it is kept. */
  author_id: string | null;
  author_name: string | null;
};

/** What a read selects: the row (as `m`), and for a reaction the author of its message (as `a`). */
export const SELECT = `SELECT m.seq, m.user_id, m.user_name, m.user_account, m.text, m.at, m.kind, m.target, m.edited_at, m.deleted_at,
  m.reply, m.replies, m.reactions, m.mentions, a.user_id AS author_id, a.user_name AS author_name
  FROM messages m LEFT JOIN messages a ON m.kind IN ('react', 'unreact') AND a.seq = m.target`;

export function toFrame(row: Row): SequenceFrame {
  const user = userOf(row);
  switch (row.kind) {
    case "edit": {
      const frame: ChangeFrame = { type: "edit", seq: row.target!, change: row.seq, user, text: row.text, editedAt: row.at };
      if (row.mentions !== null) frame.mentions = JSON.parse(row.mentions);
      return frame;
    }
    case "delete":
      return { type: "delete", seq: row.target!, change: row.seq, deletedAt: row.at };
    case "react":
    case "unreact": {
      const frame: ChangeFrame = { type: "reactions", seq: row.target!, change: row.seq, reactions: JSON.parse(row.reactions ?? "[]"), user, emoji: row.text };
      if (row.kind === "unreact") frame.removed = true;
      if (row.author_id !== null) frame.author = { id: row.author_id, name: row.author_name! };
      return frame;
    }
  }
  const frame: MessageFrame = { type: "message", seq: row.seq, user, text: row.text, at: row.at };
  if (row.edited_at !== null) frame.editedAt = row.edited_at;
  if (row.deleted_at !== null) frame.deletedAt = row.deleted_at;
  if (row.reply !== null) frame.replyTo = JSON.parse(row.reply);
  if (row.mentions !== null) frame.mentions = JSON.parse(row.mentions);
  if (row.replies !== null) frame.replies = row.replies;
  if (row.reactions !== null) frame.reactions = JSON.parse(row.reactions);
  return frame;
}

/**
 * Who wrote a row, as frames show them: an account comes only from a
 * token, so a user with one is verified. (A token without a `sub` leaves
 * nothing to store, and its messages show the name alone once stored.)
 */
export function userOf(row: Pick<Row, "user_id" | "user_name" | "user_account">): User {
  return row.user_account === null
    ? { id: row.user_id, name: row.user_name }
    : { id: row.user_id, name: row.user_name, verified: true, account: row.user_account };
}
