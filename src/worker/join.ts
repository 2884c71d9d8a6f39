import { checkDisplayName, isClientId, isRoomName } from "../protocol/names";
import type { Format } from "../protocol";

/** What a room URL asks for: `/rooms/<room>?name=…&format=…`. */
export interface Join {
  room: string;
  /** The chosen display name, or null for the room's `User #<n>` default. */
  name: string | null;
  format: Format;
  /** Resume after this seq, or null for the recent history. */
  since: number | null;
  /** The client's stable id, or null to scope message ids to this connection. */
  client: string | null;
  /** The epoch of the history that `since` counts in, from the last `welcome`. */
  epoch: string | null;
  /** Whether the socket takes `batch` frames while the room is busy (`?batch=1`). */
  batch: boolean;
}

export type JoinError = {
  code: "bad_room" | "bad_name" | "bad_format" | "bad_since" | "bad_client" | "bad_epoch" | "bad_batch";
  message: string;
};

export type JoinResult = { ok: true; join: Join } | ({ ok: false } & JoinError);

const EPOCH = /^[0-9a-f]{16}$/;

/** `/rooms/<room>`, where the segment is still percent-encoded. */
export const ROOM_PATH = /^\/rooms\/([^/]*)$/;

/** The still-encoded room segment of a room URL's path, or null if the path is not one. */
export function roomSegment(pathname: string): string | null {
  return ROOM_PATH.exec(pathname)?.[1] ?? null;
}

/**
 * Checks the room segment (after percent-decoding, so `a%2Fb` is the bad
 * name `a/b` rather than another path) and the query parameters.
 */
export function parseJoin(segment: string, query: URLSearchParams): JoinResult {
  const room = parseRoom(segment);
  if (room === null) return { ok: false, ...BAD_ROOM };

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

  const since = parseSeq(query.get("since"));
  if (since === undefined) return { ok: false, ...BAD_SINCE };

  const client = query.get("client");
  if (client !== null && !isClientId(client)) return { ok: false, ...BAD_CLIENT };

  const epoch = query.get("epoch");
  if (epoch !== null && !EPOCH.test(epoch)) return { ok: false, code: "bad_epoch", message: "epoch must be the `epoch` of a welcome: 16 hex digits" };

  const batch = query.get("batch") ?? "0";
  if (batch !== "0" && batch !== "1") return { ok: false, code: "bad_batch", message: "batch must be 1 (batch frames while the room is busy) or 0" };
  return { ok: true, join: { room, name, format, since, client, epoch, batch: batch === "1" } };
}

// Shared with the HTTP API, which checks the same parameters.
export const BAD_ROOM = {
  code: "bad_room",
  message: "room names are 1 to 64 characters of A-Z, a-z, 0-9, '_', '.' and '-', starting with a letter or digit",
} as const;
export const BAD_SINCE = { code: "bad_since", message: "since must be a message seq: a whole number, 0 or more" } as const;
export const BAD_CLIENT = { code: "bad_client", message: "client must be 1 to 64 characters of A-Z, a-z, 0-9, '_' and '-'" } as const;

/** The room named by a still-encoded path segment, or null if it is not a valid name. */
export function parseRoom(segment: string): string | null {
  const room = decode(segment);
  return room !== null && isRoomName(room) ? room : null;
}

/** A seq from a query parameter: null when absent, undefined when malformed. */
export function parseSeq(raw: string | null): number | null | undefined {
  if (raw === null) return null;
  if (!/^\d{1,15}$/.test(raw)) return undefined;
  return Number(raw);
}

function decode(segment: string): string | null {
  try {
    return decodeURIComponent(segment);
  } catch {
    return null;
  }
}
