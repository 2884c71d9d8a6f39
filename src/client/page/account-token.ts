/**
 * A token for every room (`"room":"*"`): it lists the person's rooms and
 * opens direct conversations, and takes them into any room. The tab keeps it
 * in sessionStorage, so that a link to another room carries no token, and
 * it goes when the tab closes.
 */

const KEY = "edge-chat.account-token";

/** What a token says of itself (the server checks the signature): the room it is for, and when it expires; null if it cannot be read. */
function claimsOf(token: string): { room: string; exp?: number } | null {
  try {
    const payload = token.split(".")[1]!.replaceAll("-", "+").replaceAll("_", "/");
    const claims: unknown = JSON.parse(atob(payload));
    if (typeof claims !== "object" || claims === null || !("room" in claims) || typeof claims.room !== "string") return null;
    return "exp" in claims && typeof claims.exp === "number" ? { room: claims.room, exp: claims.exp } : { room: claims.room };
  } catch {
    return null;
  }
}

/**
 * The token to use for this page: the address's, else the tab's token for
 * every room; a token for every room is kept for the tab. A kept token that
 * has expired is dropped rather than offered to a room that would refuse
 * it, and `expired` says so.
 */
export function pageToken(fromAddress: string | null): { token: string | null; everyRoom: boolean; expired: boolean } {
  if (fromAddress !== null) {
    const everyRoom = claimsOf(fromAddress)?.room === "*";
    if (everyRoom) keep(fromAddress);
    return { token: fromAddress, everyRoom, expired: false };
  }
  const kept = stored();
  const exp = kept === null ? undefined : claimsOf(kept)?.exp;
  if (exp !== undefined && exp * 1000 <= Date.now()) {
    forget();
    return { token: null, everyRoom: false, expired: true };
  }
  return { token: kept, everyRoom: kept !== null, expired: false };
}

function stored(): string | null {
  try {
    return sessionStorage.getItem(KEY);
  } catch {
    return null;
  }
}

function keep(token: string): void {
  try {
    sessionStorage.setItem(KEY, token);
  } catch {
    // Then only this page has it: links to other rooms ask for a name.
  }
}

function forget(): void {
  try {
    sessionStorage.removeItem(KEY);
  } catch {
    // Nothing was kept.
  }
}
