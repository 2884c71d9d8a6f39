import { REPLY_EXCERPT_CHARS, type Mention, type MessageFrame, type Reaction, type ReplyTo, type SequenceFrame, type User } from "../protocol";
import { Reactions } from "./reactions";
import { SELECT, toFrame, userOf, type Row } from "./rows";
import type { RoomStore } from "./store";

/**
 * A message, or a change to message `target`, as the room stores it: the
 * frame plus who sent it, for deduplication. A change's `user` is whoever
 * made it, an edit's `text` the new text, a reaction's its emoji.
 */
export interface NewEntry {
  user: User;
  text: string;
  at: number;
  /** Whose `id` namespace this is: the client's stable id, or its connection's. */
  sender: string;
  /** The client's own id for it, if it gave one. */
  id?: string;
  change?: Change;
  /** A reply's view of the message it answers. */
  replyTo?: ReplyTo;
  mentions?: Mention[];
}

export type ChangeKind = "edit" | "delete" | "react" | "unreact";

/** What a change does, and to which message. */
export interface Change {
  kind: ChangeKind;
  target: number;
  /** For a reaction: who wrote the message, which its frame names. */
  author?: User;
}

/** A kept message, as far as deciding who may change it, or quoting it in a reply, goes. */
export interface Kept {
  seq: number;
  user: User;
  sender: string;
  text: string;
  deleted: boolean;
}

/** What an id was used for: the entry's seq, and what a resend must match to be the same. */
export interface Used {
  seq: number;
  text: string;
  change: Change | null;
  /** A message edited or deleted since: its text is no longer what was sent. */
  changed: boolean;
}

/** Oldest messages an insert deletes at most beyond the limit: one keeps the size, the other shrinks a backlog. */
const TRIM_PER_INSERT = 2;

/**
 * The room's sequence in SQLite: its messages, and the edits and deletes of
 * them, each under its own seq. A message row holds the message as it is
 * now; a change row names its `target`. Sequence numbers are handed out
 * here, in memory and synchronously, so two handlers can never take the
 * same one and every stored entry is numbered before anything is broadcast.
 */
export class History {
  /** What a room stored by an older version lacks, besides the columns: added when it wakes. */
  static readonly #INDEXES = `CREATE INDEX IF NOT EXISTS messages_by_reply_to ON messages (reply_to, seq) WHERE reply_to IS NOT NULL;
  ${Reactions.SCHEMA}`;

  static readonly SCHEMA = `CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY,
    user_id TEXT NOT NULL,
    user_name TEXT NOT NULL,
    user_account TEXT,
    text TEXT NOT NULL,
    at INTEGER NOT NULL,
    sender TEXT NOT NULL,
    client_id TEXT,
    kind TEXT,
    target INTEGER,
    edited_at INTEGER,
    deleted_at INTEGER,
    reply_to INTEGER,
    reply TEXT,
    replies INTEGER,
    reactions TEXT,
    mentions TEXT
  );
  CREATE UNIQUE INDEX IF NOT EXISTS messages_by_client_id ON messages (sender, client_id) WHERE client_id IS NOT NULL;
  ${History.#INDEXES}`;

  /**
   * The columns a room stored by an older version lacks. `reply` holds a
   * reply's `ReplyTo`, `reactions` a message's summary (or, on a reaction's
   * own row, the summary it left), `mentions` a message's: JSON, each.
   */
  static readonly #ADDED = [
    "kind TEXT",
    "target INTEGER",
    "edited_at INTEGER",
    "deleted_at INTEGER",
    "reply_to INTEGER",
    "reply TEXT",
    "replies INTEGER",
    "reactions TEXT",
    "mentions TEXT",
    "user_account TEXT",
  ];

  #lastSeq = 0;
  #oldestSeq = 0;

  private readonly sql: SqlStorage;
  readonly #reactions: Reactions;

  constructor(
    private readonly storage: DurableObjectStorage,
    private readonly store: RoomStore,
  ) {
    this.sql = storage.sql;
    const { sql } = this;
    this.#reactions = new Reactions(sql);
    if (!store.exists) return;
    const columns = sql.exec("SELECT * FROM messages LIMIT 0").columnNames;
    for (const column of History.#ADDED) {
      if (!columns.includes(column.split(" ")[0]!)) sql.exec(`ALTER TABLE messages ADD COLUMN ${column}`);
    }
    sql.exec(History.#INDEXES);
    const bounds = sql.exec<{ oldest: number | null; last: number | null }>("SELECT MIN(seq) AS oldest, MAX(seq) AS last FROM messages").one();
    this.#lastSeq = bounds.last ?? 0;
    this.#oldestSeq = bounds.oldest ?? 0;
  }

  /** The newest seq; 0 when the room never had a message. */
  get lastSeq(): number {
    return this.#lastSeq;
  }

  /** The oldest seq still kept; 0 when none is. */
  get oldestSeq(): number {
    return this.#oldestSeq;
  }

  get size(): number {
    return this.#oldestSeq === 0 ? 0 : this.#lastSeq - this.#oldestSeq + 1;
  }

  /** Whether some of the messages after `since` were already trimmed. */
  trimmedAfter(since: number): boolean {
    return since < this.#lastSeq && this.#oldestSeq > since + 1;
  }

  /** What a sender's id was used for, while its entry is kept. */
  used(sender: string, id: string): Used | null {
    if (!this.store.exists) return null;
    const row = this.sql
      .exec<Pick<Row, "seq" | "text" | "kind" | "target" | "edited_at" | "deleted_at">>(
        "SELECT seq, text, kind, target, edited_at, deleted_at FROM messages WHERE sender = ? AND client_id = ?",
        sender,
        id,
      )
      .toArray()[0];
    if (row === undefined) return null;
    const change = row.kind === null ? null : { kind: row.kind, target: row.target! };
    return { seq: row.seq, text: row.text, change, changed: row.edited_at !== null || row.deleted_at !== null };
  }

  /** Message `seq`, while it is kept; null for a change's seq, or one trimmed or never used. */
  message(seq: number): Kept | null {
    if (!this.store.exists) return null;
    const row = this.sql
      .exec<Pick<Row, "user_id" | "user_name" | "user_account" | "text" | "deleted_at"> & { sender: string }>(
        "SELECT user_id, user_name, user_account, sender, text, deleted_at FROM messages WHERE seq = ? AND kind IS NULL",
        seq,
      )
      .toArray()[0];
    if (row === undefined) return null;
    return { seq, user: userOf(row), sender: row.sender, text: row.text, deleted: row.deleted_at !== null };
  }

  /** What reactions message `seq` has, for deciding whether a reaction changes anything. */
  get reactions(): Pick<Reactions, "has" | "wouldExceed"> {
    return this.#reactions;
  }

  /**
   * Stores a message or a change under the next seq, and deletes the oldest
   * beyond `keep`, a bounded few per insert, so history stays within its
   * limit whatever the rate. A reply counts one more reply on the message
   * it answers. An edit rewrites its target's text; a delete empties it,
   * its reactions and the excerpts that replies quote of it, and the text of
   * its earlier edits goes with their rows. A reaction updates its target's
   * summary, and its row replaces the rows of the target's earlier
   * reactions: it holds the summary they led to. If a write throws, none is
   * kept and the seq is not used.
   */
  append(entry: NewEntry, keep: number): SequenceFrame {
    this.store.ensure();
    const seq = this.#lastSeq + 1;
    const { user, text, at, change, replyTo, mentions } = entry;
    let reactions: Reaction[] | null = null;
    // A plain message is one statement; anything else is several, which stand or fall together.
    if (change === undefined && replyTo === undefined) this.#insert(seq, entry, null);
    else
      this.storage.transactionSync(() => {
        reactions = this.#write(seq, entry);
      });
    this.#lastSeq = seq;
    if (this.#oldestSeq === 0) this.#oldestSeq = seq;
    this.trim(keep, TRIM_PER_INSERT);
    return toFrame({
      seq,
      user_id: user.id,
      user_name: user.name,
      user_account: user.account ?? null,
      text,
      at,
      kind: change?.kind ?? null,
      target: change?.target ?? null,
      edited_at: null,
      deleted_at: null,
      reply: replyTo === undefined ? null : JSON.stringify(replyTo),
      replies: null,
      reactions: reactions === null ? null : JSON.stringify(reactions),
      mentions: mentions === undefined ? null : JSON.stringify(mentions),
      author_id: entry.change?.author?.id ?? null,
      author_name: entry.change?.author?.name ?? null,
    });
  }

  /** Writes an entry that takes more than one statement; returns a reaction's summary. */
  #write(seq: number, entry: NewEntry): Reaction[] | null {
    const { sql } = this;
    const { change, replyTo } = entry;
    if (change === undefined) {
      this.#insert(seq, entry, null);
      if (replyTo !== undefined) sql.exec("UPDATE messages SET replies = COALESCE(replies, 0) + 1 WHERE seq = ?", replyTo.seq);
      return null;
    }
    const { kind, target } = change;
    if (kind === "react" || kind === "unreact") {
      const summary = this.#reactions.change(target, entry.text, entry.sender, entry.user.id, entry.at, kind === "react");
      const json = JSON.stringify(summary);
      sql.exec("UPDATE messages SET reactions = ? WHERE seq = ?", summary.length === 0 ? null : json, target);
      sql.exec("DELETE FROM messages WHERE kind IN ('react', 'unreact') AND target = ?", target);
      this.#insert(seq, entry, json);
      return summary;
    }
    this.#insert(seq, entry, null);
    if (kind === "edit") {
      const mentions = entry.mentions === undefined ? null : JSON.stringify(entry.mentions);
      sql.exec("UPDATE messages SET text = ?, edited_at = ?, mentions = ? WHERE seq = ?", entry.text, entry.at, mentions, target);
    } else {
      sql.exec("UPDATE messages SET text = '', deleted_at = ?, reactions = NULL WHERE seq = ?", entry.at, target);
      sql.exec("DELETE FROM messages WHERE kind IN ('edit', 'react', 'unreact') AND target = ?", target);
      this.#reactions.forget(target);
      sql.exec(`UPDATE messages SET reply = json_set(reply, '$.text', '', '$.deleted', json('true')) WHERE reply_to = ?`, target);
    }
    return null;
  }

  #insert(seq: number, { user, text, at, sender, id, change, replyTo, mentions }: NewEntry, reactions: string | null): void {
    this.sql.exec(
      `INSERT INTO messages (seq, user_id, user_name, user_account, text, at, sender, client_id, kind, target, reply_to, reply, reactions, mentions)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      seq,
      user.id,
      user.name,
      user.account ?? null,
      text,
      at,
      sender,
      id ?? null,
      change?.kind ?? null,
      change?.target ?? null,
      replyTo?.seq ?? null,
      replyTo === undefined ? null : JSON.stringify(replyTo),
      reactions,
      mentions === undefined ? null : JSON.stringify(mentions),
    );
  }

  /** The newest `limit` messages as they are now, oldest first. */
  latest(limit: number): MessageFrame[] {
    return this.#read(`SELECT * FROM (${SELECT} WHERE m.kind IS NULL ORDER BY m.seq DESC LIMIT ?) ORDER BY seq`, limit) as MessageFrame[];
  }

  /**
   * The first `limit` entries after `since`, oldest first: messages as they
   * are now, and changes to messages up to `known`. A change to a later
   * message is already in that message's text, so it would tell nothing.
   */
  after(since: number, limit: number, known = since): SequenceFrame[] {
    return this.#read(`${SELECT} WHERE m.seq > ? AND (m.kind IS NULL OR m.target <= ?) ORDER BY m.seq LIMIT ?`, since, known, limit);
  }

  /**
   * Message `seq` as it is now and the first `limit` replies to it after
   * reply `after`, in order, and whether more follow; null when `seq` is not
   * a kept message.
   */
  thread(seq: number, after: number, limit: number): { root: MessageFrame; messages: MessageFrame[]; more: boolean } | null {
    const root = this.#read(`${SELECT} WHERE m.seq = ? AND m.kind IS NULL`, seq)[0] as MessageFrame | undefined;
    if (root === undefined) return null;
    const replies = this.#read(`${SELECT} WHERE m.reply_to = ? AND m.seq > ? AND m.kind IS NULL ORDER BY m.seq LIMIT ?`, seq, after, limit + 1);
    const more = replies.length > limit;
    return { root, messages: replies.slice(0, limit) as MessageFrame[], more };
  }

  /**
   * Deletes the oldest messages beyond `keep`, at most `batch` of them, so one
   * run stays short however far behind trimming is.
   */
  trim(keep: number, batch: number): void {
    const excess = this.size - keep;
    if (excess <= 0) return;
    const upTo = this.#oldestSeq + Math.min(excess, batch) - 1;
    this.sql.exec("DELETE FROM messages WHERE seq <= ?", upTo);
    this.#reactions.forget(upTo, true);
    this.#oldestSeq = upTo + 1;
  }

  #read(query: string, ...bindings: number[]): SequenceFrame[] {
    if (!this.store.exists) return [];
    return this.sql
      .exec<Row>(query, ...bindings)
      .toArray()
      .map(toFrame);
  }
}

/** What a reply carries of message `kept`: who wrote it, and how it starts. */
export function replyTo(kept: Kept): ReplyTo {
  const text = kept.text.length <= REPLY_EXCERPT_CHARS ? kept.text : [...kept.text].slice(0, REPLY_EXCERPT_CHARS).join("");
  return { seq: kept.seq, user: kept.user, text };
}
