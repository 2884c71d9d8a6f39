/**
 * What a room and its shards say to each other. A room that outgrows
 * `SHARD_SIZE` sockets places new ones on shard objects; the room stays the
 * only writer, and each shard relays to its own sockets the stream the room
 * sends it: messages in seq order, presence batches, and the answers to its
 * members' frames. The room's side is `outbox.ts`, the shard's `inbox.ts`,
 * the shard object `shard.ts`.
 */

import type { Bucket, Lane } from "../protocol";
import type { PresenceEvent } from "../room/presence";
import { positionOf, type ClosingFrame, type LeaveReason, type SequenceFrame, type ServerFrame } from "../protocol";
import type { Member, OwnVerdict, Payload } from "../sockets/socket-set";

/**
 * A place in the room's stream to one shard: the room instance that
 * numbered it, and the number of the last item before it. Numbers restart
 * with each instance of the room, whose stream starts afresh.
 */
export interface Mark {
  instance: string;
  n: number;
}

/** A presence batch, as `PresenceBatch` takes it. */
export interface PresenceNews {
  events: PresenceEvent[];
  known: Array<[string, number]>;
  online: number;
  at: number;
  named: boolean;
}

/**
 * One thing the room sends a shard: a frame for every member or for one
 * (`to`), a presence batch, or a socket to close (the room has already
 * announced the leave).
 */
export type Item =
  | { n: number; frame: ServerFrame; to?: string }
  | { n: number; presence: PresenceNews }
  | { n: number; close: { to: string; closing: ClosingFrame } };

/** An item's place in the room's sequence: a message or change for everyone has one, anything else null. */
export function sequenced(item: Item): number | null {
  return "frame" in item && item.to === undefined ? positionOf(item.frame) : null;
}

/**
 * One call from the room to a shard. `fill` comes first: stored entries
 * the shard reported missing, up to seq `through` (any missing below it are
 * trimmed from history, or were edits of a message deleted since, so the
 * shard moves past them).
 */
export interface Delivery {
  instance: string;
  fill: { messages: SequenceFrame[]; through: number } | null;
  items: Item[];
  online: number;
}

/**
 * The shard's answer: the last item it applied, the newest seq it
 * delivered (null when it knows none), and how many sockets it holds.
 */
export interface Delivered {
  applied: number;
  delivered: number | null;
  held: number;
}

/** A socket the room placed on a shard, passed with the upgrade request. */
export interface Placement {
  shard: number;
  member: Member;
}

/** The header that carries a `Placement` from the room to the shard. */
export const PLACEMENT_HEADER = "X-Edge-Chat-Placement";

/** A frame from a shard's socket, which the room handles as if it were its own. */
export interface Forward {
  id: string;
  data: Payload;
  /** What the frame cost the socket's own limit, which its shard keeps, and which lane it took from (null: the frame bucket). */
  own: OwnVerdict;
  lane: Lane | null;
  addressFrames?: Bucket;
}

/** A shard's socket that closed or was closed. */
export interface Departure {
  id: string;
  reason: LeaveReason;
  code: number;
}

/** What a shard tells the room when asked who it holds. */
export interface Census {
  members: string[];
  delivered: number | null;
}
