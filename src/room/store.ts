import { randomHex } from "../protocol/names";

const SCHEMA = `CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)`;

/**
 * Whether the room has storage, and its tables. Reading a room must not
 * create storage (anyone can name any room), so tables are created by the
 * first write, together with the room's epoch; a room that is left with
 * nothing to keep deletes them all again.
 */
export class RoomStore {
  #exists: boolean;
  #epoch: string | null = null;

  constructor(
    private readonly sql: SqlStorage,
    /** The `CREATE … IF NOT EXISTS` statements of the other modules' tables. */
    private readonly schemas: readonly string[],
  ) {
    const tables = new Set(
      sql
        .exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('counters', 'meta')")
        .toArray()
        .map((t) => t.name),
    );
    this.#exists = tables.size > 0;
    if (tables.has("meta")) this.#epoch = sql.exec<{ value: string }>("SELECT value FROM meta WHERE name = 'epoch'").one().value;
    // Stored by a version without an epoch: add what it lacks.
    else if (this.#exists) this.#create();
  }

  /** Whether the room has any storage; when not, every read finds nothing. */
  get exists(): boolean {
    return this.#exists;
  }

  /**
   * Names this room's history: made when its storage is first written and
   * lost with it, so that a client resuming from a history that is gone can
   * be told, however far the new one has grown. Null until then.
   */
  get epoch(): string | null {
    return this.#epoch;
  }

  /** Creates the tables, before the first write. */
  ensure(): void {
    if (!this.#exists) this.#create();
  }

  /** 1, 2, 3, … per room, never reused while it has storage, like Workerman's connection id. */
  nextConnectionNumber(): number {
    this.ensure();
    return this.sql
      .exec<{ value: number }>(
        `INSERT INTO counters (name, value) VALUES ('connection', 1)
         ON CONFLICT (name) DO UPDATE SET value = value + 1
         RETURNING value`,
      )
      .one().value;
  }

  /** What the room must believe once `deleteAll()` has emptied its storage. */
  forget(): void {
    this.#exists = false;
    this.#epoch = null;
  }

  #create(): void {
    this.sql.exec(SCHEMA);
    for (const schema of this.schemas) this.sql.exec(schema);
    this.sql.exec("INSERT INTO meta (name, value) VALUES ('epoch', ?) ON CONFLICT (name) DO NOTHING", randomHex(8));
    this.#epoch = this.sql.exec<{ value: string }>("SELECT value FROM meta WHERE name = 'epoch'").one().value;
    this.#exists = true;
  }
}
