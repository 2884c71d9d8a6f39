import type { History } from "./history";
import type { RoomStore } from "./store";

/**
 * Positions a room remembers; past this, the one moved longest ago is
 * forgotten. Anyone may make up a `?client=` id, so without a cap a room
 * could be filled with positions nobody comes back for.
 */
export const MAX_READS = 100_000;

/**
 * How far each account (see `accountOf`) has read in this room: the newest
 * seq it marked read, which only ever grows. In SQLite, so that positions
 * outlive hibernation and deploys; a room that gives its storage back
 * forgets them with the rest.
 */
export class Reads {
  static readonly SCHEMA = `CREATE TABLE IF NOT EXISTS reads (
    account TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    at INTEGER NOT NULL
  )`;

  /** Rows in the table, counted when a new account first reads: most reads move a position that is already there. */
  #count: number | null = null;

  constructor(
    private readonly sql: SqlStorage,
    private readonly store: RoomStore,
    private readonly history: Pick<History, "lastSeq">,
  ) {
    // A room stored by a version without read positions lacks the table.
    if (store.exists) sql.exec(Reads.SCHEMA);
  }

  /** How far this account (as `accountOf` keys it: `accountOf({ sub })` for a token's) has read; 0 when it never said. */
  of(account: string): number {
    if (!this.store.exists) return 0;
    return this.sql.exec<{ seq: number }>("SELECT seq FROM reads WHERE account = ?", account).toArray()[0]?.seq ?? 0;
  }

  /** The positions of those of these accounts that have one. */
  positions(accounts: string[]): Map<string, number> {
    if (!this.store.exists || accounts.length === 0) return new Map();
    const rows = this.sql.exec<{ account: string; seq: number }>(
      `SELECT account, seq FROM reads WHERE account IN (${accounts.map(() => "?").join(", ")})`,
      ...accounts,
    );
    return new Map(Array.from(rows, (row) => [row.account, row.seq]));
  }

  /**
   * The account has read up to `seq`, as of `at`. A position never moves
   * back, and never past the room's newest seq (a client cannot have read
   * what is not there yet). Returns the new position, or null when this
   * changed nothing.
   */
  advance(account: string, seq: number, at: number): number | null {
    const to = Math.min(seq, this.history.lastSeq);
    const from = this.of(account);
    if (to <= from) return null;
    this.store.ensure();
    this.sql.exec(
      "INSERT INTO reads (account, seq, at) VALUES (?, ?, ?) ON CONFLICT (account) DO UPDATE SET seq = excluded.seq, at = excluded.at",
      account,
      to,
      at,
    );
    if (from === 0) this.#added();
    return to;
  }

  #added(): void {
    this.#count = this.#count === null ? this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM reads").one().n : this.#count + 1;
    if (this.#count <= MAX_READS) return;
    // A scan, for an account new to a room that already keeps MAX_READS: an index on `at` would cost every read a second row written.
    this.sql.exec("DELETE FROM reads WHERE account = (SELECT account FROM reads ORDER BY at LIMIT 1)");
    this.#count--;
  }
}
