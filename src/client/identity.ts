import { isClientId, randomHex } from "../protocol/names";

/** What the browser remembers between visits: the display name and a stable client id. */

const NAME_KEY = "edge-chat.name";
const CLIENT_KEY = "edge-chat.client";

export function storedName(): string | null {
  return read(NAME_KEY);
}

export function rememberName(name: string): void {
  write(NAME_KEY, name);
}

/**
 * The `?client=` id that scopes this browser's message ids, so that a resend
 * after a reconnect is recognised by the room. Kept for good, like a cookie.
 */
export function clientId(): string {
  let id = read(CLIENT_KEY);
  if (id === null || !isClientId(id)) {
    id = randomHex(16);
    write(CLIENT_KEY, id);
  }
  return id;
}

// Storage can be unavailable (private modes, blocked cookies): then nothing is remembered.
function read(key: string): string | null {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}

function write(key: string, value: string): void {
  try {
    localStorage.setItem(key, value);
  } catch {
    // Not remembered; everything else still works.
  }
}
