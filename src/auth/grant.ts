/**
 * What a token grants, and signing one with `ROOM_SECRET` (HS256): for
 * `npm run token`, the owner token of `POST /api/rooms`, and tests. Any JWT
 * library can sign the same claims; `token.ts` checks them. This module
 * needs nothing but `jose`, so that Node can run the script from source.
 */

import { SignJWT, type JWTPayload } from "jose";

export type Role = "member" | "moderator";

export interface Grant {
  /** The room's exact name, or `*` for every room. */
  room: string;
  /** The holder's display name. */
  name: string;
  /** Expiry, in seconds since the epoch. */
  exp: number;
  /** `member` unless said otherwise. */
  role?: Role;
  /** The holder's stable id in the app. */
  sub?: string;
  /** Not valid before, in seconds since the epoch. */
  nbf?: number;
}

export async function signToken(secret: string, grant: Grant): Promise<string> {
  const claims: JWTPayload = { room: grant.room, name: grant.name };
  if (grant.role !== undefined) claims.role = grant.role;
  const jwt = new SignJWT(claims).setProtectedHeader({ alg: "HS256", typ: "JWT" }).setExpirationTime(grant.exp).setIssuedAt();
  if (grant.sub !== undefined) jwt.setSubject(grant.sub);
  if (grant.nbf !== undefined) jwt.setNotBefore(grant.nbf);
  return jwt.sign(new TextEncoder().encode(secret));
}
