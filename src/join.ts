import { checkDisplayName, isRoomName } from "./names";
import type { Format } from "./protocol";

/** What a room URL asks for: `/rooms/<room>?name=…&format=…`. */
export interface Join {
  room: string;
  /** The chosen display name, or null for the room's `User #<n>` default. */
  name: string | null;
  format: Format;
}

export type JoinError = { code: "bad_room" | "bad_name" | "bad_format"; message: string };

export type JoinResult = { ok: true; join: Join } | ({ ok: false } & JoinError);

const ROOM_PATH = /^\/rooms\/([^/]*)$/;

/** The still-encoded room segment of a room URL's path, or null if the path is not one. */
export function roomSegment(pathname: string): string | null {
  return ROOM_PATH.exec(pathname)?.[1] ?? null;
}

/**
 * Checks the room segment (after percent-decoding, so `a%2Fb` is the bad
 * name `a/b` rather than another path) and the query parameters.
 */
export function parseJoin(segment: string, query: URLSearchParams): JoinResult {
  const room = decode(segment);
  if (room === null || !isRoomName(room)) {
    return {
      ok: false,
      code: "bad_room",
      message:
        "room names are 1 to 64 characters of A-Z, a-z, 0-9, '_', '.' and '-', starting with a letter or digit",
    };
  }

  let name: string | null = null;
  const rawName = query.get("name");
  if (rawName !== null) {
    const checked = checkDisplayName(rawName);
    if (!checked.ok) return { ok: false, code: "bad_name", message: checked.message };
    name = checked.name;
  }

  const format = query.get("format") ?? "json";
  if (format !== "json" && format !== "text") {
    return { ok: false, code: "bad_format", message: "format must be 'json' or 'text'" };
  }
  return { ok: true, join: { room, name, format } };
}

function decode(segment: string): string | null {
  try {
    return decodeURIComponent(segment);
  } catch {
    return null;
  }
}
