import type { Refusal, SearchPage, SearchResult } from "../protocol";
import { Buckets } from "../sockets/buckets";
import { tooMany } from "./admission";
import type { RoomStore } from "./store";

/** Messages a wake adds to the index of a room stored before it could search, so that waking stays quick. */
export const INDEX_BATCH = 500;

/** Words a snippet shows around the matches (FTS5 allows up to 64). */
const SNIPPET_WORDS = 16;

/**
 * The `meta` row that says how far the index reaches down in a room
 * stored before search existed: every message from that seq up is in it,
 * those below are not yet. Without the row, every message is.
 */
const INDEXED_FROM = "search_indexed_from";

/** Whether a row the triggers see (`old`) is one the index holds: a message, not a change, in the part of history indexed so far. */
const INDEXED_ROW = `old.kind IS NULL AND old.seq >= COALESCE((SELECT CAST(value AS INTEGER) FROM meta WHERE name = '${INDEXED_FROM}'), 0)`;

/**
 * What FTS5 says of a query it cannot read: a syntax error, an unclosed
 * quote, a bare `*`, or a `name:` that is no column. Anything else thrown
 * by a search is the room failing, and stays an error.
 */
const UNREADABLE = /^(fts5|unterminated string|unknown special query|no such column)/;

/** Why a search is refused, on a socket and over HTTP alike. */
export type SearchRefusal = Refusal & { code: "bad_query" | "rate_limited" };

/**
 * Full-text search over the room's messages, with SQLite's FTS5. The index
 * is an external-content FTS5 table over `messages` (it stores no text of
 * its own, only the words' positions), kept by triggers on that table:
 * every statement that stores, edits, deletes or trims a message changes
 * the index within the same statement, so the two can never disagree,
 * whichever of History's writes (or a later one) touched the row. Only
 * message rows are indexed, with their text as it is now: an edit is
 * found by its new text, a deleted message (emptied) by nothing.
 *
 * A room stored before search existed gets the index when it wakes, and
 * its messages `INDEX_BATCH` at a time, newest first, one batch per wake;
 * until then a search answers from what is indexed and says `partial`.
 *
 * Each address has a budget of searches, kept in memory as the HTTP read
 * budgets are, which its sockets and its HTTP requests share.
 */
export class MessageSearch {
  /**
   * Made with the room's other tables, and when an older room wakes. Made
   * over messages already stored, the index holds none of them: the first
   * statement says so, in the same breath. Results are ordered by seq,
   * never ranked, so the index keeps no lengths (`columnsize = 0`: a row
   * fewer written per message); accents are dropped so `cafe` finds `café`.
   */
  static readonly SCHEMA = `INSERT INTO meta (name, value)
    SELECT '${INDEXED_FROM}', MAX(seq) + 1 FROM messages
    WHERE NOT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'messages_fts') HAVING MAX(seq) IS NOT NULL
    ON CONFLICT (name) DO UPDATE SET value = excluded.value;
  CREATE VIRTUAL TABLE IF NOT EXISTS messages_fts USING fts5(
    text, content = 'messages', content_rowid = 'seq', tokenize = 'unicode61 remove_diacritics 2', columnsize = 0
  );
  CREATE TRIGGER IF NOT EXISTS messages_fts_insert AFTER INSERT ON messages WHEN new.kind IS NULL BEGIN
    INSERT INTO messages_fts (rowid, text) VALUES (new.seq, new.text);
  END;
  CREATE TRIGGER IF NOT EXISTS messages_fts_update AFTER UPDATE OF text ON messages WHEN ${INDEXED_ROW} BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.seq, old.text);
    INSERT INTO messages_fts (rowid, text) VALUES (new.seq, new.text);
  END;
  CREATE TRIGGER IF NOT EXISTS messages_fts_delete AFTER DELETE ON messages WHEN ${INDEXED_ROW} BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.seq, old.text);
  END`;

  private readonly sql: SqlStorage;
  readonly #budget = new Buckets();

  constructor(
    private readonly storage: DurableObjectStorage,
    private readonly store: RoomStore,
    /** Searches an address may make per 10 s, and the burst; 0 for no limit. */
    private readonly perTenSeconds: number,
  ) {
    this.sql = storage.sql;
    if (store.exists) this.#catchUp();
  }

  /**
   * Up to `limit` messages whose text matches `q` (FTS5 syntax), newest
   * first, older than `before` when given; one search from `address` (a
   * key as `addressKey` makes them), taken from its budget whatever the
   * answer. A query FTS5 cannot read is refused in words, never thrown.
   */
  find(q: string, before: number | null, limit: number, address: string, now: number): SearchPage | { refusal: SearchRefusal } {
    const verdict = this.#budget.take(address, this.perTenSeconds, now);
    if (!verdict.ok) return { refusal: { ...tooMany("searches", verdict.retryAfterMs), code: "rate_limited" } };
    // A room without storage has nothing to find, and reading it must not create any.
    if (!this.store.exists) return { q, results: [], more: false };
    let rows: Row[];
    try {
      rows = this.sql
        .exec<Row>(
          `SELECT m.seq, m.user_id, m.user_name, m.text, m.at, f.snippet FROM (
             SELECT rowid, snippet(messages_fts, 0, '[', ']', '…', ${SNIPPET_WORDS}) AS snippet FROM messages_fts
             WHERE messages_fts MATCH ? AND rowid < ? ORDER BY rowid DESC LIMIT ?
           ) AS f JOIN messages m ON m.seq = f.rowid ORDER BY m.seq DESC`,
          q,
          before ?? Number.MAX_SAFE_INTEGER,
          limit + 1,
        )
        .toArray();
    } catch (error) {
      const detail = error instanceof Error ? error.message.replace(/: SQLITE_ERROR$/, "") : "";
      if (!UNREADABLE.test(detail)) throw error;
      const message = `the search could not be read (${detail}); put words in double quotes to look for them as written`;
      return { refusal: { status: 400, code: "bad_query", message } };
    }
    const page: SearchPage = { q, results: rows.slice(0, limit).map(toResult), more: rows.length > limit };
    if (this.#indexedFrom() !== null) page.partial = true;
    return page;
  }

  /**
   * In a room stored before search existed: makes the index, which holds
   * every message stored from then on, and adds one batch of the older
   * messages, newest first. The index, its triggers and how far it reaches
   * change together, so that no trigger ever takes out of the index a row
   * that was never put in.
   */
  #catchUp(): void {
    const { sql } = this;
    this.storage.transactionSync(() => {
      sql.exec(MessageSearch.SCHEMA);
      const from = this.#indexedFrom();
      if (from === null) return;
      // The lowest seq of this batch, when more messages than a batch are left below `from`.
      const lowest = sql
        .exec<{ seq: number }>("SELECT seq FROM messages WHERE kind IS NULL AND seq < ? ORDER BY seq DESC LIMIT 1 OFFSET ?", from, INDEX_BATCH - 1)
        .toArray()[0]?.seq;
      sql.exec("INSERT INTO messages_fts (rowid, text) SELECT seq, text FROM messages WHERE kind IS NULL AND seq < ? AND seq >= ?", from, lowest ?? 0);
      if (lowest === undefined) sql.exec("DELETE FROM meta WHERE name = ?", INDEXED_FROM);
      else sql.exec("UPDATE meta SET value = ? WHERE name = ?", String(lowest), INDEXED_FROM);
    });
  }

  /** The seq below which messages are not indexed yet, or null once all are. */
  #indexedFrom(): number | null {
    const row = this.sql.exec<{ value: string }>("SELECT value FROM meta WHERE name = ?", INDEXED_FROM).toArray()[0];
    return row === undefined ? null : Number(row.value);
  }
}

type Row = { seq: number; user_id: string; user_name: string; text: string; at: number; snippet: string };

function toResult(row: Row): SearchResult {
  return { seq: row.seq, user: { id: row.user_id, name: row.user_name }, text: row.text, at: row.at, snippet: row.snippet };
}
