import { DurableObject } from "cloudflare:workers";
import { readConfig } from "../platform/config";
import type { Env } from "../platform/env";
import { log } from "../platform/log";
import { fullBucket, take, type Verdict } from "../protocol";

/** Rooms one account's list keeps; past this, the one joined longest ago goes. */
export const MAX_LISTED_ROOMS = 200;
/** Lists one account may ask for per 10 s: each asks every room on it. */
const LISTS_PER_10S = 10;

/** A room on an account's list, and for a direct conversation whom it is with. */
export interface ListedRoom {
  room: string;
  with?: string;
}

/**
 * One account's own object (named by the token's `sub`): the rooms it has
 * joined or been invited to by a direct message. It learns of a room when
 * the account joins it, never of messages: what is new in each room is
 * asked of the room when the list is read (see `my-rooms.ts`), so a
 * message costs the accounts of a room's members nothing.
 */
export class Account extends DurableObject<Env> {
  static readonly SCHEMA = `CREATE TABLE IF NOT EXISTS rooms (
    room TEXT PRIMARY KEY,
    joined_at INTEGER NOT NULL,
    with_sub TEXT
  )`;

  /** In memory: an evicted account has long refilled its budget. */
  readonly #lists = fullBucket(LISTS_PER_10S, Date.now());

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.storage.sql.exec(Account.SCHEMA);
  }

  /** The account joined `room` (or, with `withSub`, was given a direct conversation with that account). */
  joined(room: string, at: number, withSub?: string): void {
    this.#trace("joined");
    const { sql } = this.ctx.storage;
    sql.exec(
      `INSERT INTO rooms (room, joined_at, with_sub) VALUES (?, ?, ?)
       ON CONFLICT (room) DO UPDATE SET joined_at = excluded.joined_at, with_sub = COALESCE(excluded.with_sub, with_sub)`,
      room,
      at,
      withSub ?? null,
    );
    sql.exec("DELETE FROM rooms WHERE room NOT IN (SELECT room FROM rooms ORDER BY joined_at DESC LIMIT ?)", MAX_LISTED_ROOMS);
  }

  /** The account left `room` for good: it is no longer listed, until it joins again. */
  left(room: string): void {
    this.#trace("left");
    this.ctx.storage.sql.exec("DELETE FROM rooms WHERE room = ?", room);
  }

  /** The rooms listed, or how long to wait when the account asks too often. */
  list(): { rooms: ListedRoom[] } | { retryAfterMs: number } {
    this.#trace("list");
    const verdict: Verdict = take(this.#lists, LISTS_PER_10S, Date.now());
    if (!verdict.ok) return { retryAfterMs: verdict.retryAfterMs };
    const rows = this.ctx.storage.sql.exec<{ room: string; with_sub: string | null }>("SELECT room, with_sub FROM rooms").toArray();
    return { rooms: rows.map((r) => (r.with_sub === null ? { room: r.room } : { room: r.room, with: r.with_sub })) };
  }

  /** Says which method woke the object, when `TRACE_WAKEUPS` asks for it: `npm run bench` counts what rooms cost accounts. */
  #trace(handler: string): void {
    if (readConfig(this.env).traceWakeups) log({ event: "wake", room: this.ctx.id.name ?? "", handler: `account.${handler}` });
  }
}
