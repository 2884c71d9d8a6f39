import type { Env } from "./env";

/**
 * The web client's two pages, served by the Worker so that they carry a
 * strict Content-Security-Policy: scripts, styles and sockets from this
 * origin only, no inline script, no framing.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

/** `GET /` and `GET /rooms/<room>` from a browser: the lobby, or the chat page (which reads its room from the URL). */
export async function servePage(env: Env, url: URL, page: "lobby" | "room"): Promise<Response> {
  const asset = await env.ASSETS.fetch(new URL(page === "lobby" ? "/" : "/room", url));
  const response = new Response(asset.body, asset);
  response.headers.set("Content-Security-Policy", CONTENT_SECURITY_POLICY);
  response.headers.set("X-Content-Type-Options", "nosniff");
  response.headers.set("Referrer-Policy", "same-origin");
  return response;
}

/** Whether a request is a browser navigating to a page rather than a tool asking for data. */
export function wantsHtml(request: Request): boolean {
  return (request.headers.get("Accept") ?? "").includes("text/html");
}

/** Whether a client asked for JSON by name, as the web client does when it asks why it was refused. */
export function wantsJson(request: Request): boolean {
  return (request.headers.get("Accept") ?? "").includes("application/json");
}
