import { jsonError } from "../worker/http";
import type { Departure } from "../shard/messages";
import type { Shards } from "../shard/outbox";
import type { Member } from "../sockets/socket-set";
import type { Roster } from "./roster";

/** Which object takes the next socket: the room (0) while it has space, else the first shard that has. */
export function placeOn(roster: Roster, shardSize: number): number {
  let k = 0;
  while (roster.countOn(k) >= shardSize) k += 1;
  return k;
}

/**
 * Hands the upgrade to the shard the member was placed on, whose 101 the
 * client gets. If the shard does not take it, the member `depart`s, as
 * one whose socket failed.
 */
export async function handOver(request: Request, shard: number, member: Member, shards: Shards, depart: (departure: Departure) => void): Promise<Response> {
  const response = await shards.place(request, { shard, member });
  if (response?.status === 101) return response;
  depart({ id: member.id, reason: "error", code: 1011 });
  return response ?? jsonError(503, "unavailable", "the room could not open a connection; try again");
}
