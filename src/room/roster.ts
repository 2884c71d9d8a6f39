import type { User } from "../protocol";
import { senderOfIdentity } from "../auth/token";
import type { Member } from "../sockets/socket-set";
import { nameKey } from "./mentions";
import type { RoomStore } from "./store";

/**
 * One connection as the room's roster knows it, whichever object holds its
 * socket: who it is, as its `Member` says, without the socket's own state,
 * which only that object keeps; and `shard`, the object: 0 for the room
 * itself, else its shard's number.
 */
export type Entry = Pick<Member, "id" | "name" | "address" | "client" | "joinedAt" | "verified" | "sub" | "moderator" | "tokenExp"> & { shard: number };

type Row = {
  id: number;
  name: string;
  address: string;
  client: string | null;
  joined_at: number;
  shard: number;
  sub: string | null;
  verified: number;
  moderator: number;
  token_exp: number | null;
};

/**
 * Everyone in the room, whichever object holds their socket, in join order:
 * the room's user list, and the counts its limits are checked against. The
 * room's own members live in their sockets' attachments; those on shards
 * are rows here, so that the room knows them after it wakes.
 */
export class Roster {
  static readonly SCHEMA = `CREATE TABLE IF NOT EXISTS remote_members (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    address TEXT NOT NULL,
    client TEXT,
    joined_at INTEGER NOT NULL,
    shard INTEGER NOT NULL,
    sub TEXT,
    verified INTEGER NOT NULL DEFAULT 0,
    moderator INTEGER NOT NULL DEFAULT 0,
    token_exp INTEGER
  )`;

  readonly #entries = new Map<string, Entry>();
  readonly #perAddress = new Map<string, number>();
  readonly #perShard = new Map<number, number>();
  /** Ids by their name's `nameKey`, so that a mention looks at a few people, not at everyone. */
  readonly #byNameKey = new Map<string, Set<string>>();
  /** Ids by their `accountOf`, so that a read position reaches an account's other sockets without a look at everyone. */
  readonly #byAccount = new Map<string, Set<string>>();

  constructor(
    private readonly sql: SqlStorage,
    private readonly store: RoomStore,
    local: Iterable<Member>,
  ) {
    const found: Entry[] = Array.from(local, (m) => entryOf(m, 0));
    if (store.exists) {
      // A room stored by a version without shards lacks the table.
      sql.exec(Roster.SCHEMA);
      for (const row of sql.exec<Row>("SELECT * FROM remote_members")) found.push(fromRow(row));
    }
    // Sockets come back in no particular order; users are listed in join order.
    found.sort((a, b) => Number(a.id) - Number(b.id));
    for (const entry of found) this.#track(entry);
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Sockets open from an address, on every object. */
  countAt(address: string): number {
    return this.#perAddress.get(address) ?? 0;
  }

  /** Sockets on one object: 0 for the room, else a shard. */
  countOn(shard: number): number {
    return this.#perShard.get(shard) ?? 0;
  }

  /** The shards that hold anyone, in no particular order. */
  shards(): number[] {
    return Array.from(this.#perShard.keys()).filter((k) => k !== 0);
  }

  get(id: string): Entry | undefined {
    return this.#entries.get(id);
  }

  add(entry: Entry): void {
    if (entry.shard !== 0) {
      this.store.ensure();
      this.sql.exec(
        `INSERT INTO remote_members (id, name, address, client, joined_at, shard, sub, verified, moderator, token_exp)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        Number(entry.id),
        entry.name,
        entry.address,
        entry.client ?? null,
        entry.joinedAt,
        entry.shard,
        entry.sub ?? null,
        entry.verified ? 1 : 0,
        entry.moderator ? 1 : 0,
        entry.tokenExp ?? null,
      );
    }
    this.#track(entry);
  }

  rename(id: string, name: string): void {
    const entry = this.#entries.get(id);
    if (entry === undefined) return;
    this.#unindex(entry);
    entry.name = name;
    this.#index(entry);
    if (entry.shard !== 0) this.sql.exec("UPDATE remote_members SET name = ? WHERE id = ?", name, Number(id));
  }

  /** Someone renewed their token: it lasts until `exp` now, and may have changed their role. */
  renew(id: string, exp: number, moderator: boolean): void {
    const entry = this.#entries.get(id);
    if (entry === undefined) return;
    entry.tokenExp = exp;
    if (moderator) entry.moderator = true;
    else delete entry.moderator;
    if (entry.shard !== 0) this.sql.exec("UPDATE remote_members SET token_exp = ?, moderator = ? WHERE id = ?", exp, moderator ? 1 : 0, Number(id));
  }

  /** Those whose token expired by `nowMs`. */
  expired(nowMs: number): Entry[] {
    return Array.from(this.#entries.values()).filter((e) => e.tokenExp !== undefined && e.tokenExp * 1000 <= nowMs);
  }

  /** Removes someone; returns them only the first time, so a leave is announced once. */
  remove(id: string): Entry | undefined {
    const entry = this.#entries.get(id);
    if (entry === undefined) return undefined;
    this.#entries.delete(id);
    this.#unindex(entry);
    const account = accountOf(entry);
    if (account !== null) removeFrom(this.#byAccount, account, id);
    decrement(this.#perAddress, entry.address);
    decrement(this.#perShard, entry.shard);
    if (entry.shard !== 0) this.sql.exec("DELETE FROM remote_members WHERE id = ?", Number(id));
    return entry;
  }

  #track(entry: Entry): void {
    this.#entries.set(entry.id, entry);
    this.#index(entry);
    const account = accountOf(entry);
    if (account !== null) addTo(this.#byAccount, account, entry.id);
    this.#perAddress.set(entry.address, this.countAt(entry.address) + 1);
    this.#perShard.set(entry.shard, this.countOn(entry.shard) + 1);
  }

  #index(entry: Entry): void {
    addTo(this.#byNameKey, nameKey(entry.name), entry.id);
  }

  #unindex(entry: Entry): void {
    removeFrom(this.#byNameKey, nameKey(entry.name), entry.id);
  }

  /** Everyone here whose name has this `nameKey`. */
  named(key: string): Entry[] {
    return Array.from(this.#byNameKey.get(key) ?? [], (id) => this.#entries.get(id)!);
  }

  /** Every connection of an account (see `accountOf`), on every object. */
  ofAccount(account: string): Entry[] {
    return Array.from(this.#byAccount.get(account) ?? [], (id) => this.#entries.get(id)!);
  }

  /** Everyone a shard holds. */
  onShard(shard: number): Entry[] {
    return Array.from(this.#entries.values()).filter((e) => e.shard === shard);
  }

  /** Everyone, in join order. */
  all(): Entry[] {
    return Array.from(this.#entries.values());
  }

  users(): User[] {
    return Array.from(this.#entries.values(), toUser);
  }

  /**
   * Up to `limit` users in join order, from the first whose id is above
   * `after` (all, without it), and whether others follow. Ids grow with
   * join order, so a page that starts after the last id of the previous one
   * lists nobody twice, whoever joined or left in between.
   */
  page(after: string | null, limit: number): { users: User[]; more: boolean } {
    const from = after === null ? 0 : Number(after);
    const users: User[] = [];
    for (const entry of this.#entries.values()) {
      if (Number(entry.id) <= from) continue;
      if (users.length === limit) return { users, more: true };
      users.push(toUser(entry));
    }
    return { users, more: false };
  }
}

function addTo(index: Map<string, Set<string>>, key: string, id: string): void {
  let ids = index.get(key);
  if (ids === undefined) {
    ids = new Set();
    index.set(key, ids);
  }
  ids.add(id);
}

function removeFrom(index: Map<string, Set<string>>, key: string, id: string): void {
  const ids = index.get(key);
  ids?.delete(id);
  if (ids?.size === 0) index.delete(key);
}

function decrement<K>(counts: Map<K, number>, key: K): void {
  const left = (counts.get(key) ?? 0) - 1;
  if (left > 0) counts.set(key, left);
  else counts.delete(key);
}

/** A member of the room, held by object `shard`. */
export function entryOf(member: Member, shard: number): Entry {
  const { id, name, address, joinedAt, client, verified, sub, moderator, tokenExp } = member;
  return withoutUndefined({ id, name, address, joinedAt, shard, client, verified, sub, moderator, tokenExp });
}

function fromRow(row: Row): Entry {
  return withoutUndefined({
    id: String(row.id),
    name: row.name,
    address: row.address,
    joinedAt: row.joined_at,
    shard: row.shard,
    client: row.client ?? undefined,
    sub: row.sub ?? undefined,
    verified: row.verified ? (true as const) : undefined,
    moderator: row.moderator ? (true as const) : undefined,
    tokenExp: row.token_exp ?? undefined,
  });
}

/** Optional fields stay absent, so that nothing stored or sent carries empty keys. */
function withoutUndefined<T extends object>(value: T): T {
  for (const key of Object.keys(value) as Array<keyof T>) if (value[key] === undefined) delete value[key];
  return value;
}

/**
 * Whose namespace a member's message ids live in: its token's `sub`, else
 * its stable client id, so a resend after a reconnect is recognised, or
 * else its connection. The `#` cannot occur in a client id, so the two
 * never collide.
 */
export function senderOf(member: { id: string; client?: string; sub?: string }): string {
  return senderOfIdentity(member) ?? member.client ?? `#${member.id}`;
}

/**
 * The account a connection belongs to, whose read position it shares: its
 * token's `sub`, else its `?client=` id, keyed as `senderOf` keys them so
 * that the two never collide; null for a connection with neither, which
 * no later connection could be told apart from.
 */
export function accountOf(member: { sub: string }): string;
export function accountOf(member: { client?: string; sub?: string }): string | null;
export function accountOf(member: { client?: string; sub?: string }): string | null {
  return senderOfIdentity(member) ?? member.client ?? null;
}

export function toUser(member: { id: string; name: string; verified?: true; sub?: string; moderator?: true }): User {
  const user: User = { id: member.id, name: member.name };
  if (member.verified) user.verified = true;
  if (member.sub !== undefined) user.account = member.sub;
  if (member.moderator) user.moderator = true;
  return user;
}
