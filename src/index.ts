import { createRoom, getMessages, getRoom, postMessage } from "./api";
import type { Env } from "./env";
import { isWebSocketUpgrade, jsonError, refusalResponse, webSocketUrl } from "./http";
import { describe, log } from "./log";
import { BAD_ROOM, parseJoin, parseRoom, ROOM_PATH } from "./join";
import { isAllowedOrigin } from "./origin";
import { servePage, wantsHtml, wantsJson } from "./pages";
import { requiresToken, verifyToken } from "./token";

export { Room } from "./room";
export { Shard } from "./shard";

/** Each route: its path, the methods it answers, and which handler. */
const ROUTES = [
  { pattern: /^\/$/, methods: ["GET"], name: "lobby" },
  { pattern: ROOM_PATH, methods: ["GET"], name: "socket" },
  { pattern: /^\/api\/rooms$/, methods: ["POST"], name: "create" },
  { pattern: /^\/api\/rooms\/([^/]*)$/, methods: ["GET"], name: "room" },
  { pattern: /^\/api\/rooms\/([^/]*)\/messages$/, methods: ["GET", "POST"], name: "messages" },
] as const;

/**
 * The Worker: checks every request, and only a well-formed, allowed one
 * reaches (and bills) a room's Durable Object.
 */
export default {
  async fetch(request, env): Promise<Response> {
    try {
      return await handle(request, env);
    } catch (error) {
      // A room that threw, was reset or is overloaded: still an error in the documented shape.
      log({ event: "error", room: null, handler: "worker", message: describe(error) });
      return jsonError(500, "internal", "the room could not answer; try again");
    }
  },
} satisfies ExportedHandler<Env>;

async function handle(request: Request, env: Env): Promise<Response> {
  const url = new URL(request.url);
  const route = ROUTES.find((r) => r.pattern.test(url.pathname));
  if (route === undefined) return jsonError(404, "not_found", `no route for ${url.pathname}`);
  const methods: readonly string[] = route.methods;
  if (!methods.includes(request.method)) {
    return jsonError(405, "method_not_allowed", `${url.pathname} answers ${methods.join(" and ")}`, { Allow: methods.join(", ") });
  }
  if (route.name === "create") return createRoom(url);
  if (route.name === "lobby") return servePage(env, url, "lobby");
  const segment = route.pattern.exec(url.pathname)![1]!;

  if (route.name === "socket") {
    const parsed = parseJoin(segment, url.searchParams);
    if (!parsed.ok) return jsonError(400, parsed.code, parsed.message);
    const upgrade = isWebSocketUpgrade(request);
    if (!upgrade && wantsHtml(request)) return servePage(env, url, "room");
    if (!upgrade && !wantsJson(request)) return upgradeHint(url);
    if (!isAllowedOrigin(request.headers.get("Origin"), env.ALLOWED_ORIGINS, url)) {
      return jsonError(403, "bad_origin", "this origin may not open sockets here; see ALLOWED_ORIGINS");
    }
    const access = await checkToken(env, parsed.join.room, url);
    if (access instanceof Response) return access;
    if (access !== null) {
      if (parsed.join.name !== null && parsed.join.name !== access) return jsonError(403, "bad_token", "the token is for another name");
      // The room reads the name from the URL: give it the one the token grants.
      url.searchParams.set("name", access);
      request = new Request(url, request);
    }
    const room = env.ROOMS.getByName(parsed.join.room);
    if (upgrade) return room.fetch(request);
    // A browser cannot read why an upgrade was refused; it asks here, and hears what the upgrade heard.
    const refusal = await room.admission(request.headers.get("CF-Connecting-IP") ?? "");
    if (refusal !== null) return refusalResponse(refusal);
    return jsonError(426, "upgrade_required", "nothing stops this connection now; open it as a WebSocket");
  }

  const room = parseRoom(segment);
  if (room === null) return jsonError(400, BAD_ROOM.code, BAD_ROOM.message);
  const access = await checkToken(env, room, url);
  if (access instanceof Response) return access;
  if (route.name === "room") return getRoom(env, room);
  return request.method === "POST" ? postMessage(env, room, request, url.searchParams, access) : getMessages(env, room, url.searchParams);
}

/**
 * For a room that needs a token, checks `?token=` and returns the name it
 * grants (or the refusal); for any other room, null.
 */
async function checkToken(env: Env, room: string, url: URL): Promise<string | null | Response> {
  if (!requiresToken(room, env.ROOM_SECRET)) return null;
  const check = await verifyToken(env.ROOM_SECRET!, url.searchParams.get("token"), room, Date.now());
  return check.ok ? check.name : jsonError(check.status, check.code, check.message);
}

function upgradeHint(url: URL): Response {
  return new Response(`This is a chat room. Connect with a WebSocket client, for example:\n\n  npx wscat -c ${webSocketUrl(url)}\n`, {
    status: 426,
    headers: { "Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff", Upgrade: "websocket" },
  });
}
