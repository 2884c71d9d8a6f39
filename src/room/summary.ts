import { senderOfIdentity } from "../auth/token";
import type { MyRoom } from "../protocol";
import type { RoomStore } from "./store";

/**
 * What is new in the room for account `sub`, which has read up to `read`:
 * the messages after it by others, not deleted, and of those the ones that
 * mention it. A few reads over at most `HISTORY_LIMIT` rows, and none in a
 * room without storage.
 */
export function summaryFor(sql: SqlStorage, store: RoomStore, room: string, lastSeq: number, sub: string, read: number): MyRoom {
  if (!store.exists) return { room, lastSeq, lastAt: null, read, unread: 0, mentions: 0 };
  const own = senderOfIdentity({ sub })!;
  const counts = sql
    .exec<{ unread: number; mentions: number | null }>(
      `SELECT COUNT(*) AS unread,
         SUM(EXISTS (SELECT 1 FROM json_each(m.mentions) WHERE json_extract(value, '$.account') = ?)) AS mentions
       FROM messages m
       WHERE m.kind IS NULL AND m.deleted_at IS NULL AND m.seq > ? AND m.sender NOT IN (?, ?)`,
      sub,
      read,
      own,
      `post:${own}`,
    )
    .one();
  const last = sql.exec<{ at: number }>("SELECT at FROM messages WHERE kind IS NULL ORDER BY seq DESC LIMIT 1").toArray()[0];
  return { room, lastSeq, lastAt: last?.at ?? null, read, unread: counts.unread, mentions: counts.mentions ?? 0 };
}
