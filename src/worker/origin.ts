/**
 * Cross-site WebSocket hijacking defence. Browsers always send `Origin` with
 * an upgrade and let any page open a socket to any host, so an upgrade whose
 * `Origin` is not allowed is refused. Clients that send no `Origin` (wscat,
 * servers, apps) are not browsers acting for a visitor, and are let in.
 *
 * `ALLOWED_ORIGINS` is a comma-separated list; empty means only the Worker's
 * own origin (the scheme, host and port of the request URL). Origins are
 * compared whole after normalisation, so `https://chat.example.com.evil.net`
 * is not `https://chat.example.com`.
 */
export function isAllowedOrigin(origin: string | null, setting: string | undefined, requestUrl: URL): boolean {
  if (origin === null) return true;
  const wanted = normalise(origin);
  if (wanted === null) return false;
  const list = setting?.trim() ? setting.split(",").map((entry) => normalise(entry.trim())) : [requestUrl.origin];
  return list.includes(wanted);
}

function normalise(origin: string): string | null {
  try {
    const url = new URL(origin);
    // `new URL("null")` throws; opaque origins such as file: or data: say "null".
    return url.origin === "null" ? null : url.origin;
  } catch {
    return null;
  }
}
