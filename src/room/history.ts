import { positionOf, type ChangeFrame, type HistoryFrame, type MessageFrame, type SequenceFrame, type User } from "../protocol";
import type { RoomStore } from "./store";

/**
 * A message, or a change to message `target`, as the room stores it: the
 * frame plus who sent it, for deduplication. A change's `user` is whoever
 * made it, and an edit's `text` the new text.
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
}

export type ChangeKind = "edit" | "delete";

/** What a change does, and to which message. */
export interface Change {
  kind: ChangeKind;
  target: number;
}

/** A kept message, as far as deciding who may change it goes. */
export interface Kept {
  seq: number;
  user: User;
  sender: string;
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

type Row = {
  seq: number;
  user_id: string;
  user_name: string;
  text: string;
  at: number;
  kind: ChangeKind | null;
  target: number | null;
  edited_at: number | null;
  deleted_at: number | null;
};

const COLUMNS = "seq, user_id, user_name, text, at, kind, target, edited_at, deleted_at";

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
  static readonly SCHEMA = `CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY,
    user_id TEXT NOT NULL,
    user_name TEXT NOT NULL,
    text TEXT NOT NULL,
    at INTEGER NOT NULL,
    sender TEXT NOT NULL,
    client_id TEXT,
    kind TEXT,
    target INTEGER,
    edited_at INTEGER,
    deleted_at INTEGER
  );
  CREATE UNIQUE INDEX IF NOT EXISTS messages_by_client_id ON messages (sender, client_id) WHERE client_id IS NOT NULL`;

  /** The columns a room stored by a version without edits lacks. */
  static readonly #ADDED = ["kind TEXT", "target INTEGER", "edited_at INTEGER", "deleted_at INTEGER"];

  #lastSeq = 0;
  #oldestSeq = 0;

  private readonly sql: SqlStorage;

  constructor(
    private readonly storage: DurableObjectStorage,
    private readonly store: RoomStore,
  ) {
    this.sql = storage.sql;
    const { sql } = this;
    if (!store.exists) return;
    const columns = sql.exec("SELECT * FROM messages LIMIT 0").columnNames;
    for (const column of History.#ADDED) {
      if (!columns.includes(column.split(" ")[0]!)) sql.exec(`ALTER TABLE messages ADD COLUMN ${column}`);
    }
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
      .exec<{ user_id: string; user_name: string; sender: string; deleted_at: number | null }>(
        "SELECT user_id, user_name, sender, deleted_at FROM messages WHERE seq = ? AND kind IS NULL",
        seq,
      )
      .toArray()[0];
    if (row === undefined) return null;
    return { seq, user: { id: row.user_id, name: row.user_name }, sender: row.sender, deleted: row.deleted_at !== null };
  }

  /**
   * Stores a message or a change under the next seq, and deletes the oldest
   * beyond `keep`, a bounded few per insert, so history stays within its
   * limit whatever the rate. An edit rewrites its target's text; a delete
   * empties it, and the text of its earlier edits goes with their rows. If
   * a write throws, none is kept and the seq is not used.
   */
  append(entry: NewEntry, keep: number): SequenceFrame {
    this.store.ensure();
    const seq = this.#lastSeq + 1;
    const { user, text, at, change } = entry;
    // A message is one statement; a change is three, which stand or fall together.
    if (change === undefined) this.#write(seq, entry);
    else this.storage.transactionSync(() => this.#write(seq, entry));
    this.#lastSeq = seq;
    if (this.#oldestSeq === 0) this.#oldestSeq = seq;
    this.trim(keep, TRIM_PER_INSERT);
    return toFrame({
      seq,
      user_id: user.id,
      user_name: user.name,
      text,
      at,
      kind: change?.kind ?? null,
      target: change?.target ?? null,
      edited_at: null,
      deleted_at: null,
    });
  }

  #write(seq: number, { user, text, at, sender, id, change }: NewEntry): void {
    this.sql.exec(
      "INSERT INTO messages (seq, user_id, user_name, text, at, sender, client_id, kind, target) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
      seq,
      user.id,
      user.name,
      text,
      at,
      sender,
      id ?? null,
      change?.kind ?? null,
      change?.target ?? null,
    );
    if (change?.kind === "edit") this.sql.exec("UPDATE messages SET text = ?, edited_at = ? WHERE seq = ?", text, at, change.target);
    if (change?.kind === "delete") {
      this.sql.exec("UPDATE messages SET text = '', deleted_at = ? WHERE seq = ?", at, change.target);
      this.sql.exec("DELETE FROM messages WHERE kind = 'edit' AND target = ?", change.target);
    }
  }

  /** The newest `limit` messages as they are now, oldest first. */
  latest(limit: number): MessageFrame[] {
    return this.#read(`SELECT ${COLUMNS} FROM (SELECT * FROM messages WHERE kind IS NULL ORDER BY seq DESC LIMIT ?) ORDER BY seq`, limit) as MessageFrame[];
  }

  /**
   * The first `limit` entries after `since`, oldest first: messages as they
   * are now, and changes to messages up to `known`. A change to a later
   * message is already in that message's text, so it would tell nothing.
   */
  after(since: number, limit: number, known = since): SequenceFrame[] {
    return this.#read(`SELECT ${COLUMNS} FROM messages WHERE seq > ? AND (kind IS NULL OR target <= ?) ORDER BY seq LIMIT ?`, since, known, limit);
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

function toFrame(row: Row): SequenceFrame {
  const user = { id: row.user_id, name: row.user_name };
  if (row.kind === "edit") return { type: "edit", seq: row.target!, change: row.seq, user, text: row.text, editedAt: row.at };
  if (row.kind === "delete") return { type: "delete", seq: row.target!, change: row.seq, deletedAt: row.at };
  const frame: MessageFrame = { type: "message", seq: row.seq, user, text: row.text, at: row.at };
  if (row.edited_at !== null) frame.editedAt = row.edited_at;
  if (row.deleted_at !== null) frame.deletedAt = row.deleted_at;
  return frame;
}

/** Splits entries into the messages and the changes a history frame or page carries. */
export function split(entries: SequenceFrame[]): { messages: MessageFrame[]; changes: ChangeFrame[] } {
  const messages: MessageFrame[] = [];
  const changes: ChangeFrame[] = [];
  for (const entry of entries) {
    if (entry.type === "message") messages.push(entry);
    else changes.push(entry);
  }
  return { messages, changes };
}

/** Where a history frame starts: after `since` on a resume (from the history named `epoch`), else the recent messages. */
export interface ReplayFrom {
  since: number | null;
  epoch: string | null;
}

/**
 * A history frame: on a resume every entry after `since` (see `after`); for a fresh
 * join, a `since` the room never reached or a history that is gone (another
 * epoch), the latest `recent`. Never more than `max` messages in one frame,
 * with `more` when messages up to `lastSeq` were left for the next request.
 */
export function replay(history: History, from: ReplayFrom, recent: number, max: number, epoch: string): HistoryFrame {
  const { lastSeq, oldestSeq } = history;
  const { since } = from;
  // An empty history has nothing a resume could miss, whatever its epoch.
  const otherEpoch = from.epoch !== null && from.epoch !== epoch && since !== null && since > 0;
  const reset = since !== null && (since > lastSeq || otherEpoch);
  const resume = since !== null && !reset;
  const entries = resume ? history.after(since, max) : history.latest(Math.min(recent, max));
  const last = entries.at(-1);
  return {
    type: "history",
    ...split(entries),
    oldestSeq,
    lastSeq,
    gap: resume && history.trimmedAfter(since),
    reset,
    // Fewer than asked for means none was left; entries left out as already applied do not count.
    more: resume && entries.length === max && positionOf(last!) < lastSeq,
    epoch,
  };
}
