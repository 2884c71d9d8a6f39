import type { HistoryFrame, MessageFrame, User } from "./protocol";
import type { RoomStore } from "./store";

/** A message as the room stores it: the frame plus who sent it, for deduplication. */
export interface NewMessage {
  user: User;
  text: string;
  at: number;
  /** Whose `id` namespace this is: the client's stable id, or its connection's. */
  sender: string;
  /** The client's own id for the message, if it gave one. */
  id?: string;
}

type Row = { seq: number; user_id: string; user_name: string; text: string; at: number };

/** Oldest messages an insert deletes at most beyond the limit: one keeps the size, the other shrinks a backlog. */
const TRIM_PER_INSERT = 2;

/**
 * The room's messages in SQLite. Sequence numbers are handed out here, in
 * memory and synchronously, so two handlers can never take the same one and
 * every stored message is numbered before anything is broadcast.
 */
export class History {
  static readonly SCHEMA = `CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY,
    user_id TEXT NOT NULL,
    user_name TEXT NOT NULL,
    text TEXT NOT NULL,
    at INTEGER NOT NULL,
    sender TEXT NOT NULL,
    client_id TEXT
  );
  CREATE UNIQUE INDEX IF NOT EXISTS messages_by_client_id ON messages (sender, client_id) WHERE client_id IS NOT NULL`;

  #lastSeq = 0;
  #oldestSeq = 0;

  constructor(
    private readonly sql: SqlStorage,
    private readonly store: RoomStore,
  ) {
    if (!store.exists) return;
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

  /** The seq and text of a sender's message with this id, while it is kept. */
  stored(sender: string, id: string): { seq: number; text: string } | null {
    if (!this.store.exists) return null;
    const row = this.sql
      .exec<{ seq: number; text: string }>("SELECT seq, text FROM messages WHERE sender = ? AND client_id = ?", sender, id)
      .toArray()[0];
    return row ?? null;
  }

  /**
   * Stores a message under the next seq, and deletes the oldest beyond
   * `keep`, a bounded few per insert, so history stays within its limit
   * whatever the rate. If the write throws, the seq is not used.
   */
  append(message: NewMessage, keep: number): MessageFrame {
    this.store.ensure();
    const seq = this.#lastSeq + 1;
    this.sql.exec(
      "INSERT INTO messages (seq, user_id, user_name, text, at, sender, client_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
      seq,
      message.user.id,
      message.user.name,
      message.text,
      message.at,
      message.sender,
      message.id ?? null,
    );
    this.#lastSeq = seq;
    if (this.#oldestSeq === 0) this.#oldestSeq = seq;
    this.trim(keep, TRIM_PER_INSERT);
    return { type: "message", seq, user: message.user, text: message.text, at: message.at };
  }

  /** The newest `limit` messages, oldest first. */
  latest(limit: number): MessageFrame[] {
    return this.#read(
      "SELECT seq, user_id, user_name, text, at FROM (SELECT * FROM messages ORDER BY seq DESC LIMIT ?) ORDER BY seq",
      limit,
    );
  }

  /** The first `limit` messages after `since`, oldest first. */
  after(since: number, limit: number): MessageFrame[] {
    return this.#read("SELECT seq, user_id, user_name, text, at FROM messages WHERE seq > ? ORDER BY seq LIMIT ?", since, limit);
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

  #read(query: string, ...bindings: number[]): MessageFrame[] {
    if (!this.store.exists) return [];
    return this.sql.exec<Row>(query, ...bindings).toArray().map(toFrame);
  }
}

function toFrame(row: Row): MessageFrame {
  return { type: "message", seq: row.seq, user: { id: row.user_id, name: row.user_name }, text: row.text, at: row.at };
}

/** Where a history frame starts: after `since` on a resume (from the history named `epoch`), else the recent messages. */
export interface ReplayFrom {
  since: number | null;
  epoch: string | null;
}

/**
 * A history frame: on a resume every message after `since`; for a fresh
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
  const messages = resume ? history.after(since, max) : history.latest(Math.min(recent, max));
  return {
    type: "history",
    messages,
    oldestSeq,
    lastSeq,
    gap: resume && history.trimmedAfter(since),
    reset,
    more: resume && messages.length > 0 && messages.at(-1)!.seq < lastSeq,
    epoch,
  };
}
