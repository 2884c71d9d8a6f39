import type { Bucket, ClosingFrame, ClosingReason, ServerFrame } from "../protocol";
import type { Shards } from "../shard/outbox";
import type { Member, SocketSet } from "../sockets/socket-set";
import type { Entry, Roster } from "./roster";

/**
 * Someone whose frame the room handles: their roster `Entry`, with the way
 * to their socket, whether the room holds it or a shard does. The frame
 * pipeline answers through it, and an ack is sent to it once its message is
 * broadcast.
 */
export interface Peer {
  entry: Entry;
  /** Sends a frame to them at once, after nothing else. */
  deliver(frame: ServerFrame): void;
  /** Keeps their address's bucket as their frame left it, where their socket is. */
  keep(addressFrames: Bucket): void;
  /** A change to who they are (a name, a renewed token), for their socket's attachment. */
  update(change: Partial<Member>): void;
}

/** Someone on the room's own socket `ws`, whose `Member` is its attachment. */
export function localPeer(ws: WebSocket, member: Member, sockets: SocketSet, roster: Roster): Peer {
  // The roster is rebuilt from the attachment on wake, so a new name goes there too.
  const update = (change: Partial<Member>) => sockets.save(ws, Object.assign(member, change));
  return {
    entry: roster.get(member.id)!,
    deliver: (frame) => sockets.send(ws, frame),
    keep: (addressFrames) => update({ addressFrames }),
    update,
  };
}

/**
 * Someone on a shard. Their attachment is the shard's: `keep` hands it
 * the bucket in the room's answer, and the rest of who they are is the
 * room's row, which the roster keeps.
 */
export function remotePeer(entry: Entry, shards: Shards, keep: (addressFrames: Bucket) => void = () => {}): Peer {
  return { entry, deliver: (frame) => shards.push(entry.shard, { frame, to: entry.id }), keep, update: () => {} };
}

/** Why the room closes someone's socket, as they are told it and as everyone else hears it. */
export type Ending = ClosingFrame & { reason: Exclude<ClosingReason, "tryAgain"> };

/** Closes someone's socket, on whichever object holds it, after telling them why, and announces that they left. */
export type Expel = (entry: Entry, why: Ending) => void;
