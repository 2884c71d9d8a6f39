import type { Mention } from "../protocol";
import { nameKey } from "./mentions";
import type { RoomStore } from "./store";

/** Accounts a room remembers; past this, the one seen longest ago is forgotten. */
const MAX_ACCOUNTS = 10_000;

/**
 * The token accounts (`sub`) that have joined the room, under the name and
 * connection they last joined with: who may be mentioned while away.
 */
export class Accounts {
  static readonly SCHEMA = `CREATE TABLE IF NOT EXISTS accounts (
    sub TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL,
    user_id TEXT NOT NULL,
    seen_at INTEGER NOT NULL
  );
  CREATE INDEX IF NOT EXISTS accounts_by_name_key ON accounts (name_key);
  CREATE INDEX IF NOT EXISTS accounts_by_seen_at ON accounts (seen_at)`;

  #count: number;

  constructor(
    private readonly sql: SqlStorage,
    private readonly store: RoomStore,
  ) {
    // A room stored by a version without accounts lacks the table.
    if (store.exists) sql.exec(Accounts.SCHEMA);
    this.#count = store.exists ? sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM accounts").one().n : 0;
  }

  /** Someone joined with a token for account `sub`. */
  seen(sub: string, name: string, userId: string, at: number): void {
    this.store.ensure();
    const known = this.sql.exec("SELECT 1 FROM accounts WHERE sub = ?", sub).toArray().length > 0;
    this.sql.exec(
      `INSERT INTO accounts (sub, name, name_key, user_id, seen_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (sub) DO UPDATE SET name = excluded.name, name_key = excluded.name_key, user_id = excluded.user_id, seen_at = excluded.seen_at`,
      sub,
      name,
      nameKey(name),
      userId,
      at,
    );
    if (known) return;
    this.#count++;
    if (this.#count > MAX_ACCOUNTS) {
      this.sql.exec("DELETE FROM accounts WHERE sub = (SELECT sub FROM accounts ORDER BY seen_at LIMIT 1)");
      this.#count--;
    }
  }

  /** The accounts whose name has this `nameKey`. */
  named(key: string): Mention[] {
    if (!this.store.exists) return [];
    return this.sql
      .exec<{ sub: string; name: string; user_id: string }>("SELECT sub, name, user_id FROM accounts WHERE name_key = ?", key)
      .toArray()
      .map((row) => ({ id: row.user_id, name: row.name, account: row.sub }));
  }
}
