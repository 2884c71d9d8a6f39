import type { DirectRoom, ErrorBody, MyRooms } from "../protocol";
import { ChatError } from "./chat-error";
import { retryAfterHeader } from "./refusals";

/**
 * What a person has across rooms, over HTTP, with a token for every room
 * (`"room":"*"`, with a `sub`): no socket is needed to list one's rooms,
 * leave one, or open a direct conversation.
 */

/** `GET /api/me/rooms`: the account's rooms, newest activity first, with what it has not read in each. */
export async function myRooms(base: string, token: string): Promise<MyRooms> {
  return (await call(base, token, "GET", "/api/me/rooms")) as MyRooms;
}

/** `DELETE /api/me/rooms/<room>`: the room leaves the account's list. */
export async function leaveRoom(base: string, token: string, room: string): Promise<void> {
  await call(base, token, "DELETE", `/api/me/rooms/${encodeURIComponent(room)}`);
}

/** `POST /api/dms`: the private room of this account and the account `to`, the same whichever of the two asks. */
export async function openDirect(base: string, token: string, to: string): Promise<DirectRoom> {
  return (await call(base, token, "POST", "/api/dms", { to })) as DirectRoom;
}

/** The answer's JSON body; an error answer as a ChatError with the server's code and words. */
async function call(base: string, token: string, method: string, path: string, body?: unknown): Promise<unknown> {
  const url = new URL(path, base);
  // The room's socket URL names the same server.
  if (url.protocol === "ws:" || url.protocol === "wss:") url.protocol = url.protocol === "wss:" ? "https:" : "http:";
  const headers: Record<string, string> = { Accept: "application/json", Authorization: `Bearer ${token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response: Response;
  try {
    response = await fetch(url, { method, headers, ...(body !== undefined && { body: JSON.stringify(body) }) });
  } catch (error) {
    const cause = error instanceof Error && error.cause instanceof Error ? `: ${error.cause.message}` : "";
    throw new ChatError("unreachable", `cannot reach ${url.host}${cause}`);
  }
  const text = await response.text();
  let json: unknown = null;
  try {
    json = text === "" ? null : JSON.parse(text);
  } catch {
    // Not the server's JSON: a proxy's page, say. The status says what there is to say.
  }
  if (response.ok) return json;
  const error = (json ?? {}) as Partial<ErrorBody>;
  if (typeof error.code !== "string" || typeof error.message !== "string") {
    throw new ChatError(`http_${response.status}`, `${url.host} answered ${response.status} ${response.statusText}`.trimEnd());
  }
  throw new ChatError(error.code, error.message, error.retryAfterMs ?? retryAfterHeader(response));
}
