import type { Env } from "./env";
import { jsonError } from "./http";
import { BAD_CLIENT, BAD_SINCE, parseSeq } from "./join";
import { checkDisplayName, isClientId } from "./names";
import { BAD_MESSAGE_ID, checkText, isMessageId } from "./protocol";

/** Page size for `GET …/messages` without `limit`, and the most one page holds. */
export const DEFAULT_PAGE = 50;
export const MAX_PAGE = 500;

/** `GET /api/rooms/<room>`: who is online and the newest seq. */
export async function getRoom(env: Env, room: string): Promise<Response> {
  return Response.json(await env.ROOMS.getByName(room).info());
}

/** `GET /api/rooms/<room>/messages?since=&limit=`: one page of history. */
export async function getMessages(env: Env, room: string, query: URLSearchParams): Promise<Response> {
  const since = parseSeq(query.get("since"));
  if (since === undefined) return jsonError(400, BAD_SINCE.code, BAD_SINCE.message);
  const limit = parseSeq(query.get("limit"));
  if (limit === undefined || limit === 0) return jsonError(400, "bad_limit", "limit must be a whole number, 1 or more");
  const page = await env.ROOMS.getByName(room).messages(since, Math.min(limit ?? DEFAULT_PAGE, MAX_PAGE));
  return Response.json(page);
}

/**
 * `POST /api/rooms/<room>/messages`: JSON `{ name, text, id? }`, or plain
 * text with the name in `?name=`. Checked here in full, so a bad request
 * never reaches the room. Answers 201 with the new seq, or 200 with the
 * original seq when `id` was already posted by the same sender.
 */
export async function postMessage(env: Env, room: string, request: Request, query: URLSearchParams): Promise<Response> {
  const client = query.get("client");
  if (client !== null && !isClientId(client)) return jsonError(400, BAD_CLIENT.code, BAD_CLIENT.message);
  const body = await readBody(request, query);
  if (body instanceof Response) return body;

  if (typeof body.name !== "string") return jsonError(400, "bad_name", "a name is required");
  const name = checkDisplayName(body.name);
  if (!name.ok) return jsonError(400, "bad_name", name.message);
  if (typeof body.text !== "string") return jsonError(400, "bad_message", "a string `text` is required");
  const text = checkText(body.text);
  if (!text.ok) return jsonError(400, text.error.code, text.error.message);
  if (body.id !== undefined && !isMessageId(body.id)) return jsonError(400, BAD_MESSAGE_ID.code, BAD_MESSAGE_ID.message);

  // Without a client id, message ids are scoped to the poster's name; the ':'
  // keeps that apart from client ids and connections.
  const sender = client ?? `name:${name.name}`;
  const published = await env.ROOMS.getByName(room).post(name.name, text.text, sender, body.id);
  return Response.json(published, { status: published.duplicate ? 200 : 201 });
}

type Body = { name?: unknown; text?: unknown; id?: unknown };

async function readBody(request: Request, query: URLSearchParams): Promise<Body | Response> {
  const type = (request.headers.get("Content-Type") ?? "").split(";")[0]!.trim().toLowerCase();
  if (type === "text/plain") return { name: query.get("name") ?? undefined, text: await request.text() };
  if (type !== "application/json") {
    return jsonError(415, "unsupported_media_type", "send application/json { name, text, id? } or text/plain with ?name=");
  }
  let value: unknown;
  try {
    value = await request.json();
  } catch {
    return jsonError(400, "bad_json", "the body is not valid JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return jsonError(400, "bad_json", "the body must be a JSON object { name, text, id? }");
  }
  return value as Body;
}
