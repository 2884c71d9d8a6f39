import type { RoomParts } from "./parts";
import type { Person } from "./sanctions";
import type { Refusal } from "../protocol";

/**
 * Why a room would refuse another socket from `person` now, or null if it
 * would take it: someone else's direct conversation, a ban, the address's
 * share of the room, or a full room. Reads only, so that asking costs no
 * write.
 */
export function refusal(
  person: Person,
  now: number,
  { sanctions, direct, roster, config }: Pick<RoomParts, "sanctions" | "direct" | "roster" | "config">,
): Refusal | null {
  const outsider = direct.refusal(person);
  if (outsider !== null) return outsider;
  const banned = sanctions.refusal(person, now, false);
  if (banned !== null) return banned;
  const perAddress = config.maxConnectionsPerAddress;
  if (roster.countAt(person.address) >= perAddress) {
    // A slot frees when one of them closes, or is swept once it has been silent this long.
    const retryAfterMs = (config.heartbeatTimeoutSeconds || 60) * 1000;
    return { status: 429, code: "too_many_connections", message: `one address may hold at most ${perAddress} connections in a room`, retryAfterMs };
  }
  if (roster.size >= config.maxConnectionsPerRoom) {
    return { status: 503, code: "room_full", message: `this room holds at most ${config.maxConnectionsPerRoom} connections` };
  }
  return null;
}

/** An address over one of its budgets in the room: too many `what`, and when to try again. */
export function tooMany(what: string, retryAfterMs: number): Refusal {
  return { status: 429, code: "rate_limited", message: `too many ${what} from this address; try again later`, retryAfterMs };
}

export function connectingTooFast(retryAfterMs: number): Refusal {
  return tooMany("connection attempts", retryAfterMs);
}
