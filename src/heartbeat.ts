/**
 * Whether a socket is dead. Only sockets that have pinged at least once are
 * judged, so raw clients that never ping are never swept; a ping or any
 * frame since `timeoutMs` ago keeps a socket alive.
 */
export function isSilent(lastPingAt: number | null, seenAt: number, now: number, timeoutMs: number): boolean {
  if (lastPingAt === null || timeoutMs <= 0) return false;
  return now - Math.max(lastPingAt, seenAt) >= timeoutMs;
}
