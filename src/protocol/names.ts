/** Naming rules for rooms and people, shared by the Worker and the room. */

const ROOM_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const CLIENT_ID = /^[A-Za-z0-9_-]{1,64}$/;

export const MAX_NAME_CHARS = 32;

// C0/C1 controls, and the bidi overrides and isolates that can make a name
// display as something it is not.
const FORBIDDEN_IN_NAME = /[\p{Cc}\u202A-\u202E\u2066-\u2069]/u;

export function isRoomName(room: string): boolean {
  return ROOM_NAME.test(room);
}

/** Direct conversations of two accounts are rooms named `dm-…`, which `POST /api/dms` derives; only those two may be in one. */
export function isDirectRoom(room: string): boolean {
  return room.startsWith("dm-");
}

/** A client's stable id (`?client=`), which scopes its message ids across reconnects. */
export function isClientId(client: string): boolean {
  return CLIENT_ID.test(client);
}

export type NameCheck = { ok: true; name: string } | { ok: false; message: string };

/** Trims a display name and checks it; the length counts code points. */
export function checkDisplayName(raw: string): NameCheck {
  const name = raw.trim();
  if (!name.isWellFormed()) return { ok: false, message: "name is not valid Unicode" };
  const length = [...name].length;
  if (length === 0) return { ok: false, message: "name must not be empty" };
  if (length > MAX_NAME_CHARS) {
    return { ok: false, message: `name must be at most ${MAX_NAME_CHARS} characters` };
  }
  if (FORBIDDEN_IN_NAME.test(name)) {
    return { ok: false, message: "name must not contain control or bidi-override characters" };
  }
  return { ok: true, name };
}

/**
 * `bytes` random bytes in hex, for unguessable names and ids. It uses
 * `getRandomValues`, which works everywhere: `randomUUID` exists only in
 * secure contexts, and a page opened over `http://<LAN address>` is not one.
 */
export function randomHex(bytes: number): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(bytes)), (b) => b.toString(16).padStart(2, "0")).join("");
}

export function defaultName(connectionNumber: number): string {
  return `User #${connectionNumber}`;
}
