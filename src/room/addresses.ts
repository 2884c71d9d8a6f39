import { fullAt, fullBucket, take, type Bucket, type Verdict } from "../protocol";
import type { RoomStore } from "./store";

/**
 * Per-address limits in one room. A person can open many sockets, so what
 * one socket may do says little; what one address may do is what a
 * reconnecting flooder cannot reset. An IPv6 address counts by its /64,
 * since one host is handed a whole /64.
 */
export function addressKey(ip: string | null): string {
  if (ip === null || ip === "") return "unknown";
  if (!ip.includes(":")) return ip;
  const groups = expandIPv6(ip);
  if (groups === null) return ip;
  // IPv4-mapped (::ffff:a.b.c.d) is the IPv4 address it maps.
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return [groups[6]! >> 8, groups[6]! & 255, groups[7]! >> 8, groups[7]! & 255].join(".");
  }
  return `${groups
    .slice(0, 4)
    .map((g) => g.toString(16))
    .join(":")}::/64`;
}

/** The eight 16-bit groups of an IPv6 address, or null if it is not one. */
function expandIPv6(ip: string): number[] | null {
  let text = ip.toLowerCase();
  const zone = text.indexOf("%");
  if (zone !== -1) text = text.slice(0, zone);
  const tail = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (tail !== null) {
    const [a, b, c, d] = tail.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, tail.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const parse = (part: string) => (part === "" ? [] : part.split(":").map((g) => (/^[0-9a-f]{1,4}$/.test(g) ? parseInt(g, 16) : NaN)));
  const head = parse(halves[0]!);
  const rest = halves.length === 2 ? parse(halves[1]!) : [];
  const missing = 8 - head.length - rest.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return null;
  const groups = [...head, ...Array<number>(halves.length === 2 ? missing : 0).fill(0), ...rest];
  return groups.some(Number.isNaN) ? null : groups;
}

export interface AddressLimits {
  /** Connection attempts per minute, and the burst; 0 turns the limit off. */
  connectsPerMinute: number;
  /** Frames per 10 s that all sockets of one address may send together; 0 turns the limit off. */
  framesPer10s: number;
}

const MINUTE_MS = 60_000;
/**
 * Addresses remembered at most. A row is forgotten once its buckets are full
 * again, so this bounds storage only against many addresses at once; past
 * it, the address closest to being forgotten anyway goes first.
 */
export const MAX_ADDRESS_ROWS = 10_000;
/** Forgettable rows deleted per new row, so pruning keeps pace with arrivals at bounded cost. */
const PRUNE_PER_INSERT = 2;

type Row = { connects: number; connects_at: number; frames: number; frames_at: number };

/**
 * Each address's connection-attempt and frame buckets, in SQLite so that
 * they survive hibernation. The frame bucket changes with every frame, which
 * must not cost a row write each, so between a socket's connect and close it
 * travels in the attachment of the socket that last sent (see `Member`): the
 * room writes it here when a socket connects or leaves, and on wake takes the
 * newest copy. A missing row means both buckets are full.
 */
export class AddressBook {
  static readonly SCHEMA = `CREATE TABLE IF NOT EXISTS addresses (
    address TEXT PRIMARY KEY,
    connects REAL NOT NULL,
    connects_at INTEGER NOT NULL,
    frames REAL NOT NULL,
    frames_at INTEGER NOT NULL,
    idle_at INTEGER NOT NULL
  );
  CREATE INDEX IF NOT EXISTS addresses_by_idle_at ON addresses (idle_at)`;

  /** Frame buckets of the addresses with sockets open, so memory is bounded by the room's sockets. */
  readonly #frames = new Map<string, Bucket>();
  /** Addresses whose bucket came from attachments on wake and has not been compared with its row. */
  readonly #unchecked = new Set<string>();
  /** Rows stored, counted once on first need. */
  #rows: number | null = null;

  constructor(
    private readonly sql: SqlStorage,
    private readonly store: RoomStore,
    private readonly limits: AddressLimits,
  ) {}

  /** Takes a connection attempt, refused or not, and stores the address's buckets. */
  takeConnect(address: string, now: number): Verdict {
    const row = this.#read(address);
    const connects = row === null ? fullBucket(this.limits.connectsPerMinute, now) : { tokens: row.connects, at: row.connects_at };
    const verdict = take(connects, this.limits.connectsPerMinute, now, MINUTE_MS);
    this.#write(address, connects, this.#framesOf(address, row, now), row === null, now);
    return verdict;
  }

  /** How long until the address may make a connection attempt; 0 if it may now. Reads only. */
  connectWaitMs(address: string, now: number): number {
    const row = this.#read(address);
    if (row === null) return 0;
    const probe = { tokens: row.connects, at: row.connects_at };
    const verdict = take(probe, this.limits.connectsPerMinute, now, MINUTE_MS);
    return verdict.ok ? 0 : verdict.retryAfterMs;
  }

  /** Takes a frame from the bucket all sockets of the address share; returns a copy for the sender's attachment. */
  takeFrame(address: string, now: number): { verdict: Verdict; copy: Bucket } {
    const frames = this.#framesOf(address, undefined, now);
    this.#frames.set(address, frames);
    const verdict = take(frames, this.limits.framesPer10s, now);
    return { verdict, copy: { ...frames } };
  }

  /**
   * On wake: one socket's copy of its address's frame bucket, kept if it is
   * the newest copy. The address's row may be newer still (written when
   * another of its sockets left); it is read when the address next sends.
   */
  restoreFrames(address: string, copy: Bucket): void {
    const known = this.#frames.get(address);
    if (known === undefined || newer(copy, known)) this.#frames.set(address, { ...copy });
    this.#unchecked.add(address);
  }

  /** When a socket leaves, its copy goes with it: the address's frame bucket is stored instead. */
  saveFrames(address: string, stillOpen: boolean, now: number): void {
    const frames = this.#framesOf(address, undefined, now);
    if (!stillOpen) this.#frames.delete(address);
    const row = this.#read(address);
    if (row === null && fullAt(frames, this.limits.framesPer10s) <= now) return;
    const connects = row === null ? fullBucket(this.limits.connectsPerMinute, now) : { tokens: row.connects, at: row.connects_at };
    this.#write(address, connects, frames, row === null, now);
  }

  /** Deletes up to `batch` rows whose buckets are full again. */
  prune(now: number, batch: number): void {
    if (!this.store.exists) return;
    const deleted = this.sql
      .exec("DELETE FROM addresses WHERE address IN (SELECT address FROM addresses WHERE idle_at <= ? LIMIT ?) RETURNING address", now, batch)
      .toArray().length;
    if (this.#rows !== null) this.#rows -= deleted;
  }

  /** What memory must believe once the room's storage is deleted, which happens only when nobody is connected. */
  forget(): void {
    this.#rows = null;
    this.#frames.clear();
    this.#unchecked.clear();
  }

  #framesOf(address: string, row: Row | null | undefined, now: number): Bucket {
    const known = this.#frames.get(address);
    if (known !== undefined && !this.#unchecked.has(address)) return known;
    this.#unchecked.delete(address);
    const stored = row === undefined ? this.#read(address) : row;
    const fromRow = stored === null ? null : { tokens: stored.frames, at: stored.frames_at };
    const frames = known === undefined || (fromRow !== null && newer(fromRow, known)) ? (fromRow ?? fullBucket(this.limits.framesPer10s, now)) : known;
    if (known !== undefined) this.#frames.set(address, frames);
    return frames;
  }

  #read(address: string): Row | null {
    if (!this.store.exists) return null;
    return this.sql.exec<Row>("SELECT connects, connects_at, frames, frames_at FROM addresses WHERE address = ?", address).toArray()[0] ?? null;
  }

  #write(address: string, connects: Bucket, frames: Bucket, fresh: boolean, now: number): void {
    this.store.ensure();
    if (fresh) this.#makeRoom(now);
    const idleAt = Math.max(fullAt(connects, this.limits.connectsPerMinute, MINUTE_MS), fullAt(frames, this.limits.framesPer10s));
    this.sql.exec(
      `INSERT INTO addresses (address, connects, connects_at, frames, frames_at, idle_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (address) DO UPDATE SET connects = excluded.connects, connects_at = excluded.connects_at,
         frames = excluded.frames, frames_at = excluded.frames_at, idle_at = excluded.idle_at`,
      address,
      connects.tokens,
      connects.at,
      frames.tokens,
      frames.at,
      idleAt,
    );
    if (fresh) this.#rows! += 1;
  }

  /** Before a new row: forgets a few rows that are full again, and the nearest-to-full one if still at the cap. */
  #makeRoom(now: number): void {
    this.#rows ??= this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM addresses").one().n;
    this.prune(now, PRUNE_PER_INSERT);
    if (this.#rows < MAX_ADDRESS_ROWS) return;
    this.sql.exec("DELETE FROM addresses WHERE address = (SELECT address FROM addresses ORDER BY idle_at LIMIT 1)");
    this.#rows -= 1;
  }
}

/** Which of two copies of one bucket is the later state: the later take, or at the same instant the one with fewer tokens. */
function newer(a: Bucket, b: Bucket): boolean {
  return a.at > b.at || (a.at === b.at && a.tokens < b.tokens);
}
