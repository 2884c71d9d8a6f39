import { readConfig } from "../platform/config";
import type { Env } from "../platform/env";
import { json, jsonError, readText, refusalResponse, webSocketUrl } from "./http";
import { BAD_SINCE, parseSeq } from "./join";
import { checkDisplayName, randomHex } from "../protocol/names";
import { BAD_MESSAGE_ID, checkText, deletion, isMessageId, moderation, reaction, SEARCH_RESULTS, searchQuery } from "../protocol";
import { signToken } from "../auth/grant";
import type { Caller, PostResult, Read } from "../room/api";
import type { Identity } from "../auth/token";

/** Page size for `GET …/messages` without `limit`, and the most one page holds. */
const DEFAULT_PAGE = 50;
const MAX_PAGE = 500;
/** The most results one page of `GET …/search` holds. */
const MAX_SEARCH_PAGE = 100;

/**
 * `POST /api/rooms`: a new room with an unguessable name (128 random bits),
 * and, when the server signs tokens, a moderator token for its owner.
 */
export async function createRoom(env: Env, url: URL): Promise<Response> {
  const room = randomHex(16);
  const http = new URL(`/rooms/${room}`, url.origin);
  const created: { room: string; url: string; wsUrl: string; ownerToken?: string } = { room, url: http.href, wsUrl: webSocketUrl(http).href };
  if (env.ROOM_SECRET) {
    const exp = Math.floor(Date.now() / 1000) + readConfig(env).ownerTokenSeconds;
    created.ownerToken = await signToken(env.ROOM_SECRET, { room, name: "owner", role: "moderator", exp });
  }
  return json(created, 201);
}

/** `GET /api/rooms/<room>`: who is online and the newest seq. */
export async function getRoom(env: Env, room: string, caller: Caller): Promise<Response> {
  return answerRead(await env.ROOMS.getByName(room).info(caller));
}

/**
 * `GET /api/rooms/<room>/messages?since=&limit=`: one page of history; with
 * `thread=<seq>` (and `after=`, the last reply you have), one page of the
 * replies to that message instead.
 */
export async function getMessages(env: Env, room: string, query: URLSearchParams, caller: Caller): Promise<Response> {
  const limit = parseSeq(query.get("limit"));
  if (limit === undefined || limit === 0) return jsonError(400, "bad_limit", "limit must be a whole number, 1 or more");
  const size = Math.min(limit ?? DEFAULT_PAGE, MAX_PAGE);
  const thread = parseSeq(query.get("thread"));
  if (thread === undefined || thread === 0) return jsonError(400, "bad_thread", "thread must be the seq of a message, a whole number from 1");
  if (thread !== null) {
    if (query.has("since")) return jsonError(400, "bad_since", "a thread is paged with after=<the last reply's seq>, not since");
    const after = parseSeq(query.get("after"));
    if (after === undefined) return jsonError(400, "bad_after", "after must be the seq of the last reply you have, 0 or more");
    return answerRead(await env.ROOMS.getByName(room).thread(thread, after ?? 0, size, caller));
  }
  const since = parseSeq(query.get("since"));
  if (since === undefined) return jsonError(400, BAD_SINCE.code, BAD_SINCE.message);
  return answerRead(await env.ROOMS.getByName(room).messages(since, size, caller));
}

/**
 * `GET /api/rooms/<room>/search?q=&before=&limit=`: a page of the messages
 * whose text matches `q`, newest first, older than `before`. Whether FTS5
 * can read `q` only the room can tell; everything else is checked here.
 */
export async function searchMessages(env: Env, room: string, query: URLSearchParams, caller: Caller): Promise<Response> {
  const q = searchQuery(query.get("q"));
  if (!q.ok) return jsonError(400, q.error.code, q.error.message);
  const before = parseSeq(query.get("before"));
  if (before === undefined || before === 0) return jsonError(400, "bad_before", "before must be the seq of the last result you have, a whole number from 1");
  const limit = parseSeq(query.get("limit"));
  if (limit === undefined || limit === 0) return jsonError(400, "bad_limit", "limit must be a whole number, 1 or more");
  return answerRead(await env.ROOMS.getByName(room).search(q.q, before, Math.min(limit ?? SEARCH_RESULTS, MAX_SEARCH_PAGE), caller));
}

function answerRead<T extends object>(read: Read<T>): Response {
  return "refusal" in read ? refusalResponse(read.refusal) : json(read);
}

/**
 * `POST /api/rooms/<room>/messages`: JSON `{ name, text, replyTo?, id? }`, or plain
 * text with the name in `?name=`. Checked here in full, so a bad request
 * never reaches the room; the room itself limits each address's rate.
 * Answers 201 with the new seq, or 200 with the original seq when `id` was
 * already posted with the same `?client=` and text, or 409 when with
 * another text. `identity` is who the poster's token names: they must post
 * under its name, and their ids are theirs wherever they post from.
 */
export async function postMessage(env: Env, room: string, request: Request, query: URLSearchParams, caller: Caller): Promise<Response> {
  const config = readConfig(env);
  const { client, identity } = caller;
  const body = await readBody(request, query, config.maxFrameBytes);
  if (body instanceof Response) return body;

  if (typeof body.name !== "string") return jsonError(400, "bad_name", "a name is required");
  const name = checkDisplayName(body.name);
  if (!name.ok) return jsonError(400, "bad_name", name.message);
  if (identity !== null && name.name !== identity.name) return jsonError(403, "bad_token", "the token is for another name");
  if (typeof body.text !== "string") return jsonError(400, "bad_message", "a string `text` is required");
  const text = checkText(body.text, config.maxMessageChars);
  if (!text.ok) return jsonError(400, text.error.code, text.error.message);
  if (body.id !== undefined && !isMessageId(body.id)) return jsonError(400, BAD_MESSAGE_ID.code, BAD_MESSAGE_ID.message);
  const { replyTo } = body;
  if (replyTo !== undefined && !(typeof replyTo === "number" && Number.isSafeInteger(replyTo) && replyTo >= 1)) {
    return jsonError(400, "bad_message", "`replyTo` must be the seq of the message replied to, a whole number from 1");
  }
  // A name can be claimed by anyone, so it cannot scope ids: whoever posted
  // an id first under someone's name would swallow their message.
  if (body.id !== undefined && client === null && identity?.sub === undefined) {
    return jsonError(400, "client_required", "an `id` is deduplicated per ?client=<your own random id, such as a UUID>; add one");
  }

  return answerPost(await env.ROOMS.getByName(room).post({ ...caller, name: name.name, text: text.text, id: body.id, replyTo }));
}

function answerPost(result: PostResult): Response {
  if (result.ok) return json({ seq: result.seq, duplicate: result.duplicate }, result.duplicate ? 200 : 201);
  if ("refusal" in result) return refusalResponse(result.refusal);
  const message = `this id was already used with ?client= for something else (#${result.seq}); use a new id`;
  return jsonError(409, "id_conflict", message, undefined, { seq: result.seq });
}

/**
 * `POST /api/rooms/<room>/reactions`: JSON `{ type: "react" | "unreact",
 * seq, emoji, name, id? }`. A reaction is one per person, so it needs to
 * know who: a token (whose name it goes under) or a `?client=`. Answers as
 * a post does; a reaction that changes nothing answers 200 with the
 * message's own seq.
 */
export async function postReaction(env: Env, room: string, request: Request, query: URLSearchParams, caller: Caller): Promise<Response> {
  const { identity, client } = caller;
  const body = await readBody(request, query, readConfig(env).maxFrameBytes);
  if (body instanceof Response) return body;
  const parsed = reaction(body);
  if (!parsed.ok) return jsonError(400, parsed.error.code, parsed.error.message);
  if (identity?.sub === undefined && client === null) {
    return jsonError(400, "client_required", "a reaction is one per person: send a token, or ?client=<your own random id, such as a UUID>");
  }
  let name = identity?.name;
  if (name === undefined) {
    const checked = typeof body.name === "string" ? checkDisplayName(body.name) : null;
    if (checked === null || !checked.ok) return jsonError(400, "bad_name", checked === null ? "a name is required" : checked.message);
    name = checked.name;
  }
  return answerPost(await env.ROOMS.getByName(room).react({ ...caller, name, reaction: parsed.frame }));
}

type Body = Record<string, unknown> & { name?: unknown; text?: unknown; id?: unknown; replyTo?: unknown };

async function readBody(request: Request, query: URLSearchParams, maxBytes: number): Promise<Body | Response> {
  const type = (request.headers.get("Content-Type") ?? "").split(";")[0]!.trim().toLowerCase();
  if (type !== "application/json" && type !== "text/plain") {
    return jsonError(415, "unsupported_media_type", "send application/json { name, text, id? } or text/plain with ?name=");
  }
  const raw = await readText(request, maxBytes);
  if (raw === null) return jsonError(413, "too_large", `bodies are at most ${maxBytes} bytes`);
  if (type === "text/plain") return { name: query.get("name") ?? undefined, text: raw };
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return jsonError(400, "bad_json", "the body is not valid JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return jsonError(400, "bad_json", "the body must be a JSON object { name, text, id? }");
  }
  return value as Body;
}

/**
 * `POST /api/rooms/<room>/moderation`: a moderation frame as a JSON body,
 * `{ "type": "kick" | "ban" | "unban" | "mute" | "unmute", "user", "seconds"? }`
 * or `{ "type": "delete", "seq" }`, from a moderator's token in
 * `Authorization: Bearer` (checked by the Worker, which passes the refusal
 * instead when it is not one). Answers 200 with the room's `moderated` or
 * `delete` frame, 404 `unknown_user` or `unknown_message`, or 400.
 */
export async function moderate(env: Env, room: string, request: Request, moderator: Caller & { identity: Identity }): Promise<Response> {
  const raw = await readText(request, readConfig(env).maxFrameBytes);
  if (raw === null) return jsonError(413, "too_large", "the body is too large");
  let command: unknown;
  try {
    command = JSON.parse(raw);
  } catch {
    return jsonError(400, "bad_json", "the body is not valid JSON");
  }
  if (typeof command !== "object" || command === null || typeof (command as { type?: unknown }).type !== "string") {
    return jsonError(400, "bad_json", 'the body must be a JSON object such as {"type":"kick","user":"3"}');
  }
  const frame = command as Record<string, unknown> & { type: string };
  const parsed = frame.type === "delete" ? deletion(frame) : moderation(frame);
  if (!parsed.ok) return jsonError(400, parsed.error.code, parsed.error.message);
  if ("id" in parsed.frame) return jsonError(400, "bad_message", "a delete over HTTP takes no `id`: deleting twice is refused, not repeated");
  const answer = await env.ROOMS.getByName(room).moderation(parsed.frame, moderator);
  return "status" in answer ? refusalResponse(answer) : json(answer);
}
