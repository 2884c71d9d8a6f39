import { canVerify, keysOf, NOT_CONFIGURED, verifyToken, type Identity } from "../auth/token";
import { directRoomName } from "../account/direct";
import { myRooms } from "../account/my-rooms";
import type { Env } from "../platform/env";
import { readConfig } from "../platform/config";
import type { DirectRoom } from "../protocol";
import { json, jsonError, readText, refusalResponse, webSocketUrl } from "./http";

/** The longest `sub` a direct conversation may be opened with, as for tokens. */
const MAX_SUB_CHARS = 255;

/**
 * Who an `/api/me` or `/api/dms` request is: a token for every room
 * (`"room": "*"`) that names an account (`sub`), since these are about the
 * person, not one room.
 */
export async function accountOf(env: Env, token: string | null): Promise<(Identity & { sub: string }) | Response> {
  const keys = keysOf(env);
  if (!canVerify(keys)) return jsonError(NOT_CONFIGURED.status, NOT_CONFIGURED.code, NOT_CONFIGURED.message);
  if (token === null) return jsonError(401, "token_required", "this needs Authorization: Bearer <a token whose room is *>");
  const check = await verifyToken(keys, token, "*", Date.now());
  if (!check.ok) return refusalResponse(check.code === "bad_token" ? { ...check, message: `${check.message} (this needs a token whose room is *)` } : check);
  const { identity } = check;
  if (identity.sub === undefined) return jsonError(403, "bad_token", "the token names no account: it needs a `sub` claim");
  return { ...identity, sub: identity.sub };
}

/** `GET /api/me/rooms`: the account's rooms and direct conversations, newest activity first, with what it has not read. */
export async function getMyRooms(env: Env, sub: string): Promise<Response> {
  const rooms = await myRooms(env, sub);
  if ("retryAfterMs" in rooms) {
    const { retryAfterMs } = rooms;
    return refusalResponse({ status: 429, code: "rate_limited", message: "this account asked for its rooms too often; try again later", retryAfterMs });
  }
  return json(rooms);
}

/** `DELETE /api/me/rooms/<room>`: leaves the room for good; it is listed again if the account joins it again. */
export async function leaveRoom(env: Env, sub: string, room: string): Promise<Response> {
  await env.ACCOUNTS.getByName(sub).left(room);
  return new Response(null, { status: 204 });
}

/**
 * `POST /api/dms` with JSON `{ "to": "<sub>" }`: the direct conversation of
 * the caller's account and `to`, opened if it was not, and listed for both.
 * `201` when it was opened now, `200` when it already was.
 */
export async function openDirect(env: Env, sub: string, request: Request, url: URL): Promise<Response> {
  const raw = await readText(request, readConfig(env).maxFrameBytes);
  if (raw === null) return jsonError(413, "too_large", "the body is too large");
  let to: unknown;
  try {
    to = (JSON.parse(raw) as { to?: unknown } | null)?.to;
  } catch {
    return jsonError(400, "bad_json", 'the body must be JSON such as {"to":"<the other account\'s sub>"}');
  }
  if (typeof to !== "string" || to === "" || to.length > MAX_SUB_CHARS) {
    return jsonError(400, "bad_to", `\`to\` must be the other account's sub, 1 to ${MAX_SUB_CHARS} characters`);
  }
  if (to === sub) return jsonError(400, "bad_to", "a direct conversation is with someone else");
  const room = await directRoomName(sub, to, env.ROOM_SECRET);
  const opened = await env.ROOMS.getByName(room).openDirect(sub, to);
  const now = Date.now();
  await Promise.all([env.ACCOUNTS.getByName(sub).joined(room, now, to), env.ACCOUNTS.getByName(to).joined(room, now, sub)]);
  const http = new URL(`/rooms/${room}`, url.origin);
  const body: DirectRoom = { room, url: http.href, wsUrl: webSocketUrl(http).href, with: to };
  return json(body, opened ? 201 : 200);
}
