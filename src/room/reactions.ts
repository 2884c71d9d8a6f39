import { REACTION_USERS_SHOWN, type Reaction } from "../protocol";

type Summary = Reaction[];

/**
 * Who reacted with what to which message: one row per person per emoji
 * per message, keyed by sender scope as message ids are. Each message row
 * keeps its summary (see `History`), which a change here rebuilds for the
 * one emoji it touches: a count and the first few ids, both read through
 * the index, however many reacted.
 */
export class Reactions {
  static readonly SCHEMA = `CREATE TABLE IF NOT EXISTS reactions (
    target INTEGER NOT NULL,
    emoji TEXT NOT NULL,
    sender TEXT NOT NULL,
    user_id TEXT NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY (target, emoji, sender)
  );
  CREATE INDEX IF NOT EXISTS reactions_in_order ON reactions (target, emoji, at)`;

  constructor(private readonly sql: SqlStorage) {}

  /** Whether `sender` has reacted to message `target` with `emoji`. */
  has(target: number, emoji: string, sender: string): boolean {
    return this.sql.exec("SELECT 1 FROM reactions WHERE target = ? AND emoji = ? AND sender = ?", target, emoji, sender).toArray().length > 0;
  }

  /**
   * Whether one more person's `emoji` would take message `target` past
   * `max` distinct emoji: adding to one it has never does.
   */
  wouldExceed(target: number, emoji: string, max: number): boolean {
    const { sql } = this;
    if (sql.exec("SELECT 1 FROM reactions WHERE target = ? AND emoji = ? LIMIT 1", target, emoji).toArray().length > 0) return false;
    return sql.exec<{ n: number }>("SELECT COUNT(DISTINCT emoji) AS n FROM reactions WHERE target = ?", target).one().n >= max;
  }

  /**
   * Adds or takes back one reaction, and returns the message's summary
   * after it: emoji in the order they were first used, which a new one
   * joins at the end. The caller has checked that it changes something.
   */
  change(target: number, emoji: string, sender: string, userId: string, at: number, add: boolean): Summary {
    const { sql } = this;
    if (add) sql.exec("INSERT INTO reactions (target, emoji, sender, user_id, at) VALUES (?, ?, ?, ?, ?)", target, emoji, sender, userId, at);
    else sql.exec("DELETE FROM reactions WHERE target = ? AND emoji = ? AND sender = ?", target, emoji, sender);
    const stored = sql.exec<{ reactions: string | null }>("SELECT reactions FROM messages WHERE seq = ?", target).toArray()[0]?.reactions ?? null;
    const summary: Summary = stored === null ? [] : JSON.parse(stored);
    const count = sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM reactions WHERE target = ? AND emoji = ?", target, emoji).one().n;
    const index = summary.findIndex((r) => r.emoji === emoji);
    if (count === 0) {
      if (index >= 0) summary.splice(index, 1);
      return summary;
    }
    const users = sql
      .exec<{ user_id: string }>(
        "SELECT user_id FROM reactions WHERE target = ? AND emoji = ? ORDER BY at, sender LIMIT ?",
        target,
        emoji,
        REACTION_USERS_SHOWN,
      )
      .toArray()
      .map((r) => r.user_id);
    const reaction = { emoji, count, users };
    if (index >= 0) summary[index] = reaction;
    else summary.push(reaction);
    return summary;
  }

  /** Forgets the reactions to message `target`, or with `andBefore` to every message up to it. */
  forget(target: number, andBefore = false): void {
    this.sql.exec(`DELETE FROM reactions WHERE target ${andBefore ? "<=" : "="} ?`, target);
  }
}
