/**
 * Signed access to `private-` rooms when a `ROOM_SECRET` is set: a token
 * binds a room, a display name and an expiry with HMAC-SHA256. It is
 * `<payload>.<signature>`, both base64url, the payload being JSON
 * `{ "r": room, "n": name, "e": expiry in epoch seconds }`. Used by the
 * Worker and by `npm run token`, so it needs nothing but Web Crypto.
 */

export interface Grant {
  room: string;
  name: string;
  /** Expiry, in seconds since the epoch. */
  exp: number;
}

export type TokenCheck =
  | { ok: true; name: string }
  | { ok: false; status: 401 | 403; code: "token_required" | "bad_token" | "token_expired"; message: string };

const encoder = new TextEncoder();

export function requiresToken(room: string, secret: string | undefined): boolean {
  return Boolean(secret) && room.startsWith("private-");
}

export async function signToken(secret: string, grant: Grant): Promise<string> {
  const payload = toBase64Url(encoder.encode(JSON.stringify({ r: grant.room, n: grant.name, e: grant.exp })));
  const signature = await crypto.subtle.sign("HMAC", await hmacKey(secret), encoder.encode(payload));
  return `${payload}.${toBase64Url(new Uint8Array(signature))}`;
}

/** Checks a token for `room` at `nowMs`; the signature is compared in constant time by Web Crypto. */
export async function verifyToken(secret: string, token: string | null, room: string, nowMs: number): Promise<TokenCheck> {
  if (token === null || token === "") {
    return { ok: false, status: 401, code: "token_required", message: "this room needs a ?token= from its owner" };
  }
  const bad = (message: string): TokenCheck => ({ ok: false, status: 403, code: "bad_token", message });
  const [payload, signature, extra] = token.split(".");
  const signatureBytes = fromBase64Url(signature ?? "");
  if (!payload || signatureBytes === null || extra !== undefined) return bad("the token is malformed");
  if (!(await crypto.subtle.verify("HMAC", await hmacKey(secret), signatureBytes, encoder.encode(payload)))) {
    return bad("the token's signature is not valid");
  }
  const grant = readGrant(payload);
  if (grant === null) return bad("the token is malformed");
  if (grant.room !== room) return bad("the token is for another room");
  if (grant.exp * 1000 <= nowMs) return { ok: false, status: 403, code: "token_expired", message: "the token has expired" };
  return { ok: true, name: grant.name };
}

function readGrant(payload: string): Grant | null {
  const bytes = fromBase64Url(payload);
  if (bytes === null) return null;
  try {
    const value = JSON.parse(new TextDecoder().decode(bytes)) as { r?: unknown; n?: unknown; e?: unknown };
    if (typeof value.r !== "string" || typeof value.n !== "string" || typeof value.e !== "number") return null;
    return { room: value.r, name: value.n, exp: value.e };
  } catch {
    return null;
  }
}

function hmacKey(secret: string) {
  return crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
}

function toBase64Url(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function fromBase64Url(text: string): Uint8Array<ArrayBuffer> | null {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) return null;
  try {
    return Uint8Array.from(atob(text.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
  } catch {
    return null;
  }
}
