/** What the sweep knows of a socket: when it joined, and when it last sent a frame or a ping, if ever. */
export interface Liveness {
  joinedAt: number;
  seenAt?: number;
  lastPingAt: number | null;
}

/**
 * Whether a socket is dead. One that pings is judged by its last ping or
 * frame. A raw client that talks but never pings is never swept, since it
 * has shown it is there; one that has sent nothing at all since it joined
 * is, or a script could hold every seat in a room without a word.
 */
export function isSilent({ joinedAt, seenAt, lastPingAt }: Liveness, now: number, timeoutMs: number): boolean {
  if (timeoutMs <= 0) return false;
  if (lastPingAt === null) return seenAt === undefined && now - joinedAt >= timeoutMs;
  return now - Math.max(lastPingAt, seenAt ?? joinedAt) >= timeoutMs;
}
