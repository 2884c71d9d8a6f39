/**
 * Identity from the app that embeds the chat: a JWT that names its holder
 * for one room (or `*`, every room). HS256 tokens are signed with
 * `ROOM_SECRET`; with `AUTH_JWKS_URL`, RS256 and ES256 tokens from the app's
 * identity provider are checked against its published keys, kept by
 * `key-set.ts`. `jose` does every cryptographic and time check; this module
 * only says which keys, algorithms and clock skew count, and what the
 * claims mean here.
 */

import { decodeProtectedHeader, errors, jwtVerify, type JWTPayload } from "jose";
import { DEFAULTS, readConfig, type ConfigVars } from "../platform/config";
import type { Role } from "./grant";
import { KeySet, KeysUnavailable } from "./key-set";
import { checkDisplayName, isDirectRoom } from "../protocol/names";

/**
 * Who a valid token says its holder is: the app's claims, before any
 * connection. `identify` copies them into a connection's `Member`, and
 * `personOf` into the `Person` that sanctions judge.
 */
export interface Identity {
  /** Their stable id in the app that signed the token, if it gave one. */
  sub?: string;
  name: string;
  role: Role;
  /** When the token expires, in seconds since the epoch. */
  exp: number;
}

/** Where tokens can be checked (the shared secret, the identity provider's key set, or both), and how strictly. */
export interface TokenKeys {
  secret?: string;
  jwksUrl?: string;
  /** Seconds a token's `nbf`, `iat` and `exp` may be off this server's clock; `DEFAULTS.authClockSkewSeconds` if absent. */
  clockSkewSeconds?: number;
}

/**
 * A token's verdict. A refusal has the shape of a `Refusal`: a 503
 * `auth_unavailable` (the identity provider's keys could not be had) says
 * in `retryAfterMs` when to try again.
 */
export type TokenCheck =
  | { ok: true; identity: Identity }
  | { ok: false; status: 401 | 403 | 503; code: "token_required" | "bad_token" | "token_expired" | "auth_not_configured"; message: string }
  | { ok: false; status: 503; code: "auth_unavailable"; message: string; retryAfterMs: number };

/**
 * The header in which the Worker hands a room the identity it verified.
 * Only the Worker sets it: it drops whatever a client sent under this name.
 */
export const IDENTITY_HEADER = "X-Edge-Chat-Identity";

/** The longest `sub` accepted: ids from identity providers are far shorter. */
const MAX_SUB_CHARS = 255;
const ASYMMETRIC = ["RS256", "ES256"];

/**
 * Whose namespace a token holder's message ids live in: theirs, wherever
 * and however often they connect; null without a `sub`. The `:` occurs in
 * no client id, so the namespaces never collide.
 */
export function senderOfIdentity(identity: { sub?: string } | null): string | null {
  return identity?.sub === undefined ? null : `sub:${identity.sub}`;
}

/** Who the Worker's check of an upgrade's token says its holder is (see `IDENTITY_HEADER`), if it had one. */
export function identityFrom(header: string | null): Identity | null {
  return header === null ? null : (JSON.parse(header) as Identity);
}

/**
 * What renewing a socket's token comes to: the new expiry and role, for a
 * valid token naming the same person as the one it joined with; else why
 * not, and for `auth_unavailable` when to try again.
 */
export function renewal(
  check: TokenCheck,
  holder: { verified?: true; sub?: string; name: string },
):
  | { ok: true; exp: number; moderator: boolean }
  | { ok: false; code: "bad_token" | "token_expired" | "auth_unavailable"; message: string; retryAfterMs?: number } {
  if (!check.ok && check.code === "auth_unavailable") return { ok: false, code: check.code, message: check.message, retryAfterMs: check.retryAfterMs };
  if (!check.ok) return { ok: false, code: check.code === "token_expired" ? "token_expired" : "bad_token", message: check.message };
  const { identity } = check;
  if (!holder.verified || identity.sub !== holder.sub || identity.name !== holder.name) {
    return { ok: false, code: "bad_token", message: "a renewal must name the same person as the token you joined with" };
  }
  return { ok: true, exp: identity.exp, moderator: identity.role === "moderator" };
}

/** The keys and clock skew a Worker's settings give. */
export function keysOf(env: ConfigVars & { ROOM_SECRET?: string; AUTH_JWKS_URL?: string }): TokenKeys {
  return { secret: env.ROOM_SECRET, jwksUrl: env.AUTH_JWKS_URL, clockSkewSeconds: readConfig(env).authClockSkewSeconds };
}

/** Whether the server can check tokens at all. */
export function canVerify(keys: TokenKeys): boolean {
  return Boolean(keys.secret || keys.jwksUrl);
}

/**
 * `private-` rooms and direct conversations admit only holders of a valid
 * token; others take one if it is offered.
 */
export function isPrivateRoom(room: string): boolean {
  return room.startsWith("private-") || isDirectRoom(room);
}

export const NOT_CONFIGURED: TokenCheck & { ok: false } = {
  ok: false,
  status: 503,
  code: "auth_not_configured",
  message: "this server checks no tokens (it has neither ROOM_SECRET nor AUTH_JWKS_URL), so it cannot admit anyone to a private room or by token",
};

/** Checks a token for `room` at `nowMs`. */
export async function verifyToken(keys: TokenKeys, token: string | null, room: string, nowMs: number): Promise<TokenCheck> {
  if (token === null || token === "") {
    return { ok: false, status: 401, code: "token_required", message: "this room needs a ?token= from the app or the room's owner" };
  }
  if (!canVerify(keys)) return NOT_CONFIGURED;
  const bad = (message: string): TokenCheck => ({ ok: false, status: 403, code: "bad_token", message });
  let alg: string | undefined;
  try {
    alg = decodeProtectedHeader(token).alg;
  } catch {
    return bad("the token is not a JWT");
  }
  // jose checks `iat` only against a maxTokenAge, which is not set: an `iat` ahead of this clock passes.
  const options = { currentDate: new Date(nowMs), requiredClaims: ["exp"], clockTolerance: keys.clockSkewSeconds ?? DEFAULTS.authClockSkewSeconds };
  let payload: JWTPayload;
  try {
    if (alg === "HS256" && keys.secret) {
      ({ payload } = await jwtVerify(token, new TextEncoder().encode(keys.secret), { ...options, algorithms: ["HS256"] }));
    } else if (alg !== undefined && ASYMMETRIC.includes(alg) && keys.jwksUrl) {
      ({ payload } = await jwtVerify(token, keySet(keys.jwksUrl).getKey, { ...options, algorithms: ASYMMETRIC }));
    } else {
      return bad(`tokens signed with ${JSON.stringify(alg ?? "no algorithm").slice(0, 40)} are not accepted here`);
    }
  } catch (error) {
    if (error instanceof KeysUnavailable) {
      return { ok: false, status: 503, code: "auth_unavailable", message: `${error.message}; try again later`, retryAfterMs: error.retryAfterMs };
    }
    if (error instanceof errors.JWTExpired) return { ok: false, status: 403, code: "token_expired", message: "the token has expired" };
    if (error instanceof errors.JWTClaimValidationFailed && error.claim === "nbf") return bad("the token is not valid yet");
    if (error instanceof errors.JWTClaimValidationFailed) return bad(`the token's ${error.claim} claim is missing or not valid`);
    return bad("the token's signature is not valid");
  }
  return readClaims(payload, room, bad);
}

function readClaims(payload: JWTPayload, room: string, bad: (message: string) => TokenCheck): TokenCheck {
  if (payload.room !== room && payload.room !== "*") return bad("the token is for another room");
  if (typeof payload.name !== "string") return bad("the token names nobody: it needs a `name` claim");
  const name = checkDisplayName(payload.name);
  if (!name.ok) return bad(`the token's name is not usable: ${name.message}`);
  const role = payload.role ?? "member";
  if (role !== "member" && role !== "moderator") return bad("the token's role must be member or moderator");
  const identity: Identity = { name: name.name, role, exp: payload.exp! };
  if (payload.sub !== undefined) {
    if (payload.sub === "" || payload.sub.length > MAX_SUB_CHARS) return bad(`the token's sub must be 1 to ${MAX_SUB_CHARS} characters`);
    identity.sub = payload.sub;
  }
  return { ok: true, identity };
}

/** One key set per URL for the isolate's life, so that every request and room in it shares the fetched keys. */
const keySets = new Map<string, KeySet>();

function keySet(url: string): KeySet {
  let set = keySets.get(url);
  if (set === undefined) {
    // `fetch` is looked up at each call, so that tests can stand in for the provider.
    set = new KeySet(url, { fetch: (input, init) => fetch(input, init), now: () => Date.now() });
    keySets.set(url, set);
  }
  return set;
}
