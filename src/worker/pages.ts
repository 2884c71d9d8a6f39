import type { Env } from "../platform/env";

/**
 * `GET /` and `GET /rooms/<room>` from a browser: the lobby, or the chat page
 * (which reads its room from the URL). Their security headers, as every
 * asset's, come from `public/_headers`.
 */
export function servePage(env: Env, url: URL, page: "lobby" | "room"): Promise<Response> {
  return env.ASSETS.fetch(new URL(page === "lobby" ? "/" : "/room", url));
}

/** Whether a request is a browser navigating to a page rather than a tool asking for data. */
export function wantsHtml(request: Request): boolean {
  return (request.headers.get("Accept") ?? "").includes("text/html");
}

/** Whether a client asked for JSON by name, as the web client does when it asks why it was refused. */
export function wantsJson(request: Request): boolean {
  return (request.headers.get("Accept") ?? "").includes("application/json");
}
