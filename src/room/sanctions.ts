import { closing, errorFrame, type ErrorFrame, type ModeratedFrame, type ModerationFrame, type Refusal } from "../protocol";
import { toUser, type Entry, type Roster } from "./roster";
import type { Expel } from "./peer";
import type { RoomStore } from "./store";
import type { Identity } from "../auth/token";

/**
 * Whom sanctions and limits judge: not a connection, but what tells apart
 * the person behind connections (their token's `sub`, their `?client=` id,
 * their address) and whether a token vouched for them. Every `Entry` is
 * one; so is someone joining or calling over HTTP (`personOf`).
 */
export type Person = Pick<Entry, "sub" | "client" | "address" | "verified" | "moderator">;

/** Someone arriving, as sanctions know people. */
export function personOf(address: string, client: string | null, identity: Identity | null): Person {
  return {
    address,
    ...(client !== null && { client }),
    ...(identity?.sub !== undefined && { sub: identity.sub }),
    ...(identity !== null && { verified: true as const }),
    ...(identity?.role === "moderator" && { moderator: true as const }),
  };
}

/** What a sanction in force answers, on a socket and over HTTP alike. */
export function sanctioned(kind: Kind, until: number): Refusal & { code: "banned" | "muted"; until: number } {
  const when = new Date(until).toISOString();
  if (kind === "ban") return { status: 403, code: "banned", message: `a moderator banned you from this room until ${when}`, until };
  return { status: 403, code: "muted", message: `a moderator muted you until ${when}; you can read but not write`, until };
}

export type Kind = "ban" | "mute";

type Row = { kind: Kind; user_id: string; name: string; sub: string | null; client: string | null; address: string; until: number };

/**
 * The room's bans and mutes, in SQLite so that they survive hibernation,
 * restarts and the person reconnecting. A sanction is recorded with
 * everything the room knew of its target: their token's `sub`, their
 * `?client=` id and their address (see `holds` for how each counts).
 * Kept in memory once read: a room has few.
 */
export class Sanctions {
  static readonly SCHEMA = `CREATE TABLE IF NOT EXISTS sanctions (
    kind TEXT NOT NULL,
    user_id TEXT NOT NULL,
    name TEXT NOT NULL,
    sub TEXT,
    client TEXT,
    address TEXT NOT NULL,
    until INTEGER NOT NULL,
    PRIMARY KEY (kind, user_id)
  )`;

  #rows: Row[] | null = null;

  constructor(
    private readonly sql: SqlStorage,
    private readonly store: RoomStore,
  ) {}

  /**
   * Bans or mutes `target` until `until` (epoch ms), replacing any earlier
   * one of the same kind: recorded under their user id, with all the room
   * knows to tell the person behind it apart.
   */
  impose(kind: Kind, target: Entry, until: number): void {
    this.store.ensure();
    const row: Row = { kind, user_id: target.id, name: target.name, sub: target.sub ?? null, client: target.client ?? null, address: target.address, until };
    this.sql.exec(
      "INSERT OR REPLACE INTO sanctions (kind, user_id, name, sub, client, address, until) VALUES (?, ?, ?, ?, ?, ?, ?)",
      row.kind,
      row.user_id,
      row.name,
      row.sub,
      row.client,
      row.address,
      row.until,
    );
    this.#rows = [...this.#all().filter((r) => !(r.kind === kind && r.user_id === target.id)), row];
  }

  /** Lifts the ban or mute imposed on the user with this id; returns the name it was imposed on, or null if none was. */
  lift(kind: Kind, userId: string, now: number): string | null {
    const row = this.#all().find((r) => r.kind === kind && r.user_id === userId && r.until > now);
    if (row === undefined) return null;
    this.sql.exec("DELETE FROM sanctions WHERE kind = ? AND user_id = ?", kind, userId);
    this.#rows = this.#all().filter((r) => r !== row);
    return row.name;
  }

  /** Until when (epoch ms) a sanction of this kind holds `person`, or null if none does. */
  against(kind: Kind, person: Person, now: number): number | null {
    let until: number | null = null;
    for (const row of this.#all()) {
      if (row.kind !== kind || row.until <= now || !holds(row, person)) continue;
      until = Math.max(until ?? 0, row.until);
    }
    return until;
  }

  /**
   * What `person` is refused now: a ban refuses everything, a mute every
   * write (`writing`); null if neither holds them.
   */
  refusal(person: Person, now: number, writing: boolean): ReturnType<typeof sanctioned> | null {
    const banned = this.against("ban", person, now);
    if (banned !== null) return sanctioned("ban", banned);
    const muted = writing ? this.against("mute", person, now) : null;
    return muted === null ? null : sanctioned("mute", muted);
  }

  /** Whether any sanction is still in force, which the room must keep its storage for. */
  active(now: number): boolean {
    return this.#all().some((r) => r.until > now);
  }

  /** Forgets sanctions that are over. */
  prune(now: number): void {
    if (!this.#all().some((r) => r.until <= now)) return;
    this.sql.exec("DELETE FROM sanctions WHERE until <= ?", now);
    this.#rows = this.#all().filter((r) => r.until > now);
  }

  /** What memory must believe once the room's storage is deleted. */
  forget(): void {
    this.#rows = null;
  }

  #all(): Row[] {
    if (this.#rows === null) {
      // A room stored by a version without sanctions lacks the table.
      if (this.store.exists) this.sql.exec(Sanctions.SCHEMA);
      this.#rows = this.store.exists ? this.sql.exec<Row>("SELECT * FROM sanctions").toArray() : [];
    }
    return this.#rows;
  }
}

/**
 * Whether a sanction holds `person`. Someone with a `sub` is judged by it
 * alone, and a moderator by their token alone: another account, or the
 * moderator who imposed it, is never caught by sharing a network or a
 * device. Anyone else is held by the target's client id, so that dropping
 * the token does not help, and, if they came without a token, by the
 * target's address too: that is all that tells tokenless people apart.
 */
function holds(row: Row, person: Person): boolean {
  if (person.sub !== undefined) return person.sub === row.sub;
  if (person.moderator) return false;
  if (row.client !== null && person.client === row.client) return true;
  return !person.verified && person.address === row.address;
}

/** What a sanction does to those it holds who are in the room now: a ban closes their sockets, a mute ends their typing. */
export interface Enforcement {
  expel: Expel;
  hush(entry: Entry): void;
}

/**
 * Does a moderator's kick, ban, unban, mute or unmute, and says what came
 * of it for the moderator. Whether the sender may is the caller's check. A
 * ban closes every socket it holds, not only the one it was imposed on: the
 * same person on another device is the same person.
 */
export function moderate(frame: ModerationFrame, now: number, sanctions: Sanctions, roster: Roster, { expel, hush }: Enforcement): ModeratedFrame | ErrorFrame {
  const { type: action, user: id } = frame;
  if (action === "unban" || action === "unmute") {
    const name = sanctions.lift(action === "unban" ? "ban" : "mute", id, now);
    if (name === null) return errorFrame("unknown_user", `nobody with id ${id} is ${action === "unban" ? "banned" : "muted"}`);
    return { type: "moderated", action, user: { id, name } };
  }
  const target = roster.get(id);
  if (target === undefined) return errorFrame("unknown_user", `nobody with id ${id} is in the room`);
  const user = toUser(target);
  if (action === "kick") {
    expel(target, closing("kicked", "a moderator removed you from the room"));
    return { type: "moderated", action, user };
  }
  const until = now + frame.seconds! * 1000;
  sanctions.impose(action, target, until);
  const held = roster.all().filter((entry) => sanctions.against(action, entry, now) !== null);
  if (action === "ban") {
    const { message } = sanctioned("ban", until);
    for (const entry of held) expel(entry, closing("banned", message, until));
  } else {
    for (const entry of held) hush(entry);
  }
  return { type: "moderated", action, user, until };
}
