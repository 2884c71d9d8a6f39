/** The room's durable state in its SQLite storage. */
export class RoomStore {
  constructor(private readonly sql: SqlStorage) {
    sql.exec("CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)");
  }

  /** 1, 2, 3, … per room, never reused, like Workerman's connection id. */
  nextConnectionNumber(): number {
    return this.sql
      .exec<{ value: number }>(
        `INSERT INTO counters (name, value) VALUES ('connection', 1)
         ON CONFLICT (name) DO UPDATE SET value = value + 1
         RETURNING value`,
      )
      .one().value;
  }
}
