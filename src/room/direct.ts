import { isDirectRoom } from "../protocol/names";
import type { Refusal } from "../protocol";
import type { Person } from "./sanctions";
import type { RoomStore } from "./store";

/**
 * The two accounts of a direct conversation, a room named `dm-…`: nobody
 * else may join it or read it, and until `POST /api/dms` opened it nobody
 * at all, so no one can take the name first. Kept in the room's `meta`
 * table; in any other room there is nothing to keep.
 */
export class DirectMembers {
  #members: readonly string[] | null = null;

  constructor(
    private readonly sql: SqlStorage,
    private readonly store: RoomStore,
    private readonly room: string,
  ) {}

  /** Opens the conversation of `a` and `b`; whether it was not open before. */
  open(a: string, b: string): boolean {
    if (this.#all().length > 0) return false;
    this.store.ensure();
    this.sql.exec("INSERT INTO meta (name, value) VALUES ('direct', ?)", JSON.stringify([a, b].sort()));
    this.#members = null;
    return true;
  }

  /** Whether this is a direct conversation that `sub` is one of. */
  has(sub: string | undefined): boolean {
    return sub !== undefined && this.#all().includes(sub);
  }

  /** Whether the room is a direct conversation that has been opened, which it must keep even with nothing else. */
  get opened(): boolean {
    return isDirectRoom(this.room) && this.#all().length > 0;
  }

  /** Why `person` may not be in this room at all; null in any room but a direct one, and for its two. */
  refusal(person: Person): Refusal | null {
    if (!isDirectRoom(this.room)) return null;
    if (this.#all().length === 0) return { status: 404, code: "unknown_room", message: "no direct conversation has this name" };
    if (this.has(person.sub)) return null;
    return { status: 403, code: "forbidden", message: "this is a direct conversation between two other people" };
  }

  /** What memory must believe once the room's storage is deleted. */
  forget(): void {
    this.#members = null;
  }

  #all(): readonly string[] {
    if (this.#members === null) {
      const row = this.store.exists ? this.sql.exec<{ value: string }>("SELECT value FROM meta WHERE name = 'direct'").toArray()[0] : undefined;
      this.#members = row === undefined ? [] : (JSON.parse(row.value) as string[]);
    }
    return this.#members;
  }
}
