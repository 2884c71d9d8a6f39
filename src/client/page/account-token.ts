/**
 * A token for every room (`"room":"*"`): it lists the person's rooms and
 * opens direct conversations, and takes them into any room. The tab keeps it
 * in sessionStorage, so that a link to another room carries no token, and
 * it goes when the tab closes.
 */

const KEY = "edge-chat.account-token";

/** The room a token is for, as it says (the server checks the signature); null if it cannot be read. */
function tokenRoom(token: string): string | null {
  try {
    const payload = token.split(".")[1]!.replaceAll("-", "+").replaceAll("_", "/");
    const claims: unknown = JSON.parse(atob(payload));
    return typeof claims === "object" && claims !== null && "room" in claims && typeof claims.room === "string" ? claims.room : null;
  } catch {
    return null;
  }
}

/** The token to use for this page: the address's, else the tab's token for every room; a token for every room is kept for the tab. */
export function pageToken(fromAddress: string | null): { token: string | null; everyRoom: boolean } {
  if (fromAddress !== null) {
    const everyRoom = tokenRoom(fromAddress) === "*";
    if (everyRoom) keep(fromAddress);
    return { token: fromAddress, everyRoom };
  }
  const kept = stored();
  return { token: kept, everyRoom: kept !== null };
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
