import type { HistoryFrame, MessageFrame, User } from "./protocol";

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

/**
 * The room's messages in SQLite. Sequence numbers are handed out here, in
 * memory and synchronously, so two handlers can never take the same one and
 * every stored message is numbered before anything is broadcast.
 */
export class History {
  #lastSeq: number;
  #oldestSeq: number;

  constructor(private readonly sql: SqlStorage) {
    sql.exec(`CREATE TABLE IF NOT EXISTS messages (
      seq INTEGER PRIMARY KEY,
      user_id TEXT NOT NULL,
      user_name TEXT NOT NULL,
      text TEXT NOT NULL,
      at INTEGER NOT NULL,
      sender TEXT NOT NULL,
      client_id TEXT
    )`);
    sql.exec("CREATE UNIQUE INDEX IF NOT EXISTS messages_by_client_id ON messages (sender, client_id) WHERE client_id IS NOT NULL");
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

  /** The seq a sender's message with this id was stored under, while it is kept. */
  seqOf(sender: string, id: string): number | null {
    const row = this.sql
      .exec<{ seq: number }>("SELECT seq FROM messages WHERE sender = ? AND client_id = ?", sender, id)
      .toArray()[0];
    return row?.seq ?? null;
  }

  /** Stores a message under the next seq. If the write throws, the seq is not used. */
  append(message: NewMessage): MessageFrame {
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
    return this.sql.exec<Row>(query, ...bindings).toArray().map(toFrame);
  }
}

function toFrame(row: Row): MessageFrame {
  return { type: "message", seq: row.seq, user: { id: row.user_id, name: row.user_name }, text: row.text, at: row.at };
}

/**
 * What a client joining with `?since=` (or without, as null) receives. A
 * resume gets every message after `since`; a fresh join, or a `since` the
 * room never reached, gets the latest `recent`.
 */
export function replay(history: History, since: number | null, recent: number): HistoryFrame {
  const { lastSeq, oldestSeq } = history;
  const reset = since !== null && since > lastSeq;
  const resume = since !== null && !reset;
  return {
    type: "history",
    messages: resume ? history.after(since, Number.MAX_SAFE_INTEGER) : history.latest(recent),
    oldestSeq,
    lastSeq,
    gap: resume && history.trimmedAfter(since),
    reset,
  };
}
