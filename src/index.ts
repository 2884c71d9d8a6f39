import type { Env } from "./env";
import { isWebSocketUpgrade, jsonError } from "./http";
import { parseJoin, roomSegment } from "./join";

export { Room } from "./room";

/**
 * The Worker: checks every request, and only a well-formed room upgrade
 * reaches (and bills) a room's Durable Object.
 */
export default {
  async fetch(request, env): Promise<Response> {
    const url = new URL(request.url);
    const segment = roomSegment(url.pathname);
    if (segment === null) return jsonError(404, "not_found", `no route for ${url.pathname}`);
    if (request.method !== "GET") {
      return jsonError(405, "method_not_allowed", "room URLs only answer GET", { Allow: "GET" });
    }
    const parsed = parseJoin(segment, url.searchParams);
    if (!parsed.ok) return jsonError(400, parsed.code, parsed.message);
    if (!isWebSocketUpgrade(request)) return upgradeHint(url);
    return env.ROOMS.getByName(parsed.join.room).fetch(request);
  },
} satisfies ExportedHandler<Env>;

function upgradeHint(url: URL): Response {
  const ws = new URL(url);
  ws.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return new Response(
    `This is a chat room. Connect with a WebSocket client, for example:\n\n  npx wscat -c ${ws}\n`,
    { status: 426, headers: { "Content-Type": "text/plain; charset=utf-8", Upgrade: "websocket" } },
  );
}
