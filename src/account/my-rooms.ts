import type { Env } from "../platform/env";
import type { MyRooms } from "../protocol";

/**
 * `GET /api/me/rooms`: the account's list from its own object, and from
 * each room on it what is new there for the account, asked in parallel.
 * Reading costs one call to the account's object and one per listed room
 * (at most `MAX_LISTED_ROOMS`); messages cost the list nothing. Newest
 * activity first; rooms without messages last.
 */
export async function myRooms(env: Env, sub: string): Promise<MyRooms | { retryAfterMs: number }> {
  const listed = await env.ACCOUNTS.getByName(sub).list();
  if ("retryAfterMs" in listed) return listed;
  const rooms = await Promise.all(
    listed.rooms.map(async ({ room, with: other }) => {
      const summary = await env.ROOMS.getByName(room).summary(sub);
      return other === undefined ? summary : { ...summary, with: other };
    }),
  );
  rooms.sort((a, b) => (b.lastAt ?? -1) - (a.lastAt ?? -1) || (a.room < b.room ? -1 : 1));
  return { rooms };
}
