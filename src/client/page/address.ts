import { isRoomName } from "../../protocol/names";

/** The room this page is for, from its path `/rooms/<room>`, or null. */
export function roomFromPath(): string | null {
  const match = /^\/rooms\/([^/]+)$/.exec(location.pathname);
  if (match === null) return null;
  try {
    const room = decodeURIComponent(match[1]!);
    return isRoomName(room) ? room : null;
  } catch {
    return null;
  }
}

/**
 * Once in, the token leaves the address bar (the session keeps it for
 * reconnecting), so that it is not shared with a screenshot, a copied link
 * or the history.
 */
export function forgetTokenInAddress(): void {
  const url = new URL(location.href);
  if (!url.searchParams.has("token")) return;
  url.searchParams.delete("token");
  history.replaceState(history.state, "", url);
}
