import { createRoom, getMessages, getRoom, moderate, postMessage, postReaction, searchMessages } from "./api";
import { accountOf, getMyRooms, leaveRoom, openDirect } from "./me";
import type { Env } from "../platform/env";
import { isWebSocketUpgrade, jsonError, refusalResponse, webSocketUrl } from "./http";
import { describe, log } from "../platform/log";
import { BAD_CLIENT, BAD_ROOM, parseJoin, parseRoom, ROOM_PATH } from "./join";
import { isClientId } from "../protocol/names";
import { SUBPROTOCOL, TOKEN_SUBPROTOCOL_PREFIX } from "../protocol";
import type { Caller } from "../room/api";
import { isAllowedOrigin } from "./origin";
import { servePage, wantsHtml, wantsJson } from "./pages";
import { canVerify, IDENTITY_HEADER, isPrivateRoom, keysOf, NOT_CONFIGURED, verifyToken, type Identity } from "../auth/token";

/** Each route: its path, the methods it answers, and which handler. */
const ROUTES = [
  { pattern: /^\/$/, methods: ["GET"], name: "lobby" },
  { pattern: ROOM_PATH, methods: ["GET"], name: "socket" },
  { pattern: /^\/api\/rooms$/, methods: ["POST"], name: "create" },
  { pattern: /^\/api\/rooms\/([^/]*)$/, methods: ["GET"], name: "room" },
  { pattern: /^\/api\/rooms\/([^/]*)\/messages$/, methods: ["GET", "POST"], name: "messages" },
  { pattern: /^\/api\/rooms\/([^/]*)\/moderation$/, methods: ["POST"], name: "moderation" },
  { pattern: /^\/api\/rooms\/([^/]*)\/reactions$/, methods: ["POST"], name: "reactions" },
  { pattern: /^\/api\/me\/rooms$/, methods: ["GET"], name: "myRooms" },
  { pattern: /^\/api\/me\/rooms\/([^/]*)$/, methods: ["DELETE"], name: "leave" },
  { pattern: /^\/api\/dms$/, methods: ["POST"], name: "dms" },
  { pattern: /^\/api\/rooms\/([^/]*)\/search$/, methods: ["GET"], name: "search" },
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
  // A browser sends `Origin` with every cross-site write, and any page may make one: only allowed origins may change anything.
  if (request.method !== "GET" && !isAllowedOrigin(request.headers.get("Origin"), env.ALLOWED_ORIGINS, url)) {
    return jsonError(403, "bad_origin", "this origin may not make changes here; see ALLOWED_ORIGINS");
  }
  if (route.name === "create") return createRoom(env, url);
  if (route.name === "lobby") return servePage(env, url, "lobby");
  const token = tokenOf(request, url);
  if (token instanceof Response) return token;
  if (route.name === "myRooms" || route.name === "leave" || route.name === "dms") {
    const account = await accountOf(env, token);
    if (account instanceof Response) return account;
    if (route.name === "myRooms") return getMyRooms(env, account.sub);
    if (route.name === "dms") return openDirect(env, account.sub, request, url);
    const room = parseRoom(route.pattern.exec(url.pathname)![1]!);
    if (room === null) return jsonError(400, BAD_ROOM.code, BAD_ROOM.message);
    return leaveRoom(env, account.sub, room);
  }
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
    const access = await checkToken(env, parsed.join.room, token);
    if (access instanceof Response) return access;
    if (access !== null && parsed.join.name !== null && parsed.join.name !== access.name) {
      return jsonError(403, "bad_token", "the token is for another name");
    }
    const room = env.ROOMS.getByName(parsed.join.room);
    if (upgrade) return withSubprotocol(request, await room.fetch(withIdentity(request, url, access)));
    // A browser cannot read why an upgrade was refused; it asks here, and hears what the upgrade heard.
    const refusal = await room.admission(callerOf(request, parsed.join.client, access));
    if (refusal !== null) return refusalResponse(refusal);
    return jsonError(426, "upgrade_required", "nothing stops this connection now; open it as a WebSocket");
  }

  const room = parseRoom(segment);
  if (room === null) return jsonError(400, BAD_ROOM.code, BAD_ROOM.message);
  const client = url.searchParams.get("client");
  if (client !== null && !isClientId(client)) return jsonError(400, BAD_CLIENT.code, BAD_CLIENT.message);
  if (route.name === "moderation") {
    const moderator = await checkModerator(env, room, token);
    if (moderator instanceof Response) return moderator;
    return moderate(env, room, request, { ...callerOf(request, client, moderator), identity: moderator });
  }
  const access = await checkToken(env, room, token);
  if (access instanceof Response) return access;
  const caller = callerOf(request, client, access);
  if (route.name === "room") return getRoom(env, room, caller);
  if (route.name === "reactions") return postReaction(env, room, request, url.searchParams, caller);
  if (route.name === "search") return searchMessages(env, room, url.searchParams, caller);
  return request.method === "POST" ? postMessage(env, room, request, url.searchParams, caller) : getMessages(env, room, url.searchParams, caller);
}

function callerOf(request: Request, client: string | null, identity: Identity | null): Caller {
  return { address: request.headers.get("CF-Connecting-IP") ?? "", client, identity };
}

/**
 * The token a request carries, or null: in `Authorization: Bearer`, in an
 * upgrade's subprotocols (`token.<JWT>` beside `edge-chat`), where no URL
 * log records it, or in `?token=`, for wscat and curl.
 */
function tokenOf(request: Request, url: URL): string | null | Response {
  const authorization = request.headers.get("Authorization");
  if (authorization !== null) {
    const bearer = /^Bearer\s+(\S+)$/i.exec(authorization)?.[1];
    return bearer ?? jsonError(401, "token_required", "Authorization must be Bearer <token>");
  }
  const offered = subprotocols(request);
  const carried = offered.find((p) => p.startsWith(TOKEN_SUBPROTOCOL_PREFIX));
  if (carried === undefined) return url.searchParams.get("token");
  if (!offered.includes(SUBPROTOCOL)) {
    return jsonError(400, "bad_token", `a token offered as a subprotocol needs "${SUBPROTOCOL}" offered beside it, which the room answers with`);
  }
  return carried.slice(TOKEN_SUBPROTOCOL_PREFIX.length);
}

function subprotocols(request: Request): string[] {
  const header = request.headers.get("Sec-WebSocket-Protocol");
  return header === null ? [] : header.split(",").map((p) => p.trim());
}

/**
 * An accepted upgrade that offered `edge-chat` is answered with it, as
 * WebSocket clients require of a server that was offered subprotocols;
 * the token beside it is never echoed.
 */
function withSubprotocol(request: Request, response: Response): Response {
  if (response.status !== 101 || !subprotocols(request).includes(SUBPROTOCOL)) return response;
  const headers = new Headers(response.headers);
  headers.set("Sec-WebSocket-Protocol", SUBPROTOCOL);
  return new Response(null, { status: 101, webSocket: response.webSocket, headers });
}

/**
 * Checks the request's token: required in a `private-` room, optional
 * elsewhere. Returns who it names, null for no token in a public room, or
 * the refusal. A private room on a server that checks no tokens admits
 * nobody.
 */
async function checkToken(env: Env, room: string, token: string | null): Promise<Identity | null | Response> {
  const keys = keysOf(env);
  if (isPrivateRoom(room) && !canVerify(keys)) return jsonError(NOT_CONFIGURED.status, NOT_CONFIGURED.code, NOT_CONFIGURED.message);
  if (token === null && !isPrivateRoom(room)) return null;
  const check = await verifyToken(keys, token, room, Date.now());
  return check.ok ? check.identity : refusalResponse(check);
}

/** Checks the token for moderating `room` over HTTP: a valid token for the room whose role is moderator. */
async function checkModerator(env: Env, room: string, token: string | null): Promise<Identity | Response> {
  const keys = keysOf(env);
  if (!canVerify(keys)) return jsonError(NOT_CONFIGURED.status, NOT_CONFIGURED.code, NOT_CONFIGURED.message);
  if (token === null) return jsonError(401, "token_required", "moderating a room needs Authorization: Bearer <a moderator's token>");
  const check = await verifyToken(keys, token, room, Date.now());
  if (!check.ok) return refusalResponse(check);
  if (check.identity.role !== "moderator") return jsonError(403, "forbidden", "only a moderator's token may moderate a room");
  return check.identity;
}

/**
 * The upgrade as the room gets it: the token's identity in a header only
 * the Worker sets (whatever the client sent under that name is dropped),
 * the token's name in the URL, where the room reads names, and the token
 * itself nowhere.
 */
function withIdentity(request: Request, url: URL, identity: Identity | null): Request {
  const headers = new Headers(request.headers);
  headers.delete(IDENTITY_HEADER);
  headers.delete("Authorization");
  headers.delete("Sec-WebSocket-Protocol");
  url.searchParams.delete("token");
  if (identity !== null) {
    url.searchParams.set("name", identity.name);
    headers.set(IDENTITY_HEADER, JSON.stringify(identity));
  }
  return new Request(url, { method: request.method, headers });
}

function upgradeHint(url: URL): Response {
  return new Response(`This is a chat room. Connect with a WebSocket client, for example:\n\n  npx wscat -c ${webSocketUrl(url)}\n`, {
    status: 426,
    headers: { "Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff", Upgrade: "websocket" },
  });
}
