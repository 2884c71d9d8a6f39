import type { Bucket } from "./limits";
import type { Format, User } from "./protocol";

/**
 * A connected user, stored as its socket's attachment so it survives
 * hibernation. Kept to a few short fields: attachments are capped at 2 KB.
 */
export interface Member {
  id: string;
  name: string;
  format: Format;
  joinedAt: number;
  /** When the socket last sent a frame that reached the room, if it has; pings do not count here. */
  seenAt?: number;
  /** Its address's key (`addressKey`), whose limits it shares. */
  address: string;
  /**
   * The address's shared frame bucket as this socket's last frame left it,
   * so that hibernation does not refill it (see `AddressBook`).
   */
  addressFrames?: Bucket;
  /** The stable id from `?client=`, if the client gave one. */
  client?: string;
  /** The socket's rate limit, here so that hibernation does not refill it. */
  bucket: Bucket;
}

/**
 * The user set: every socket that joined and has not left. It lives in
 * memory as a cache of the attachments and is rebuilt from them on wake.
 * A socket whose attachment was cleared has been announced as gone.
 */
export class Roster {
  readonly #members = new Map<WebSocket, Member>();
  /** Open sockets per address. */
  readonly #perAddress = new Map<string, number>();

  static restore(sockets: Iterable<WebSocket>): Roster {
    const found: Array<[WebSocket, Member]> = [];
    for (const ws of sockets) {
      const member = ws.deserializeAttachment() as Member | null;
      if (member) found.push([ws, member]);
    }
    // The runtime hands sockets back in no particular order; users are listed in join order.
    found.sort(([, a], [, b]) => Number(a.id) - Number(b.id));
    const roster = new Roster();
    for (const [ws, member] of found) roster.#track(ws, member);
    return roster;
  }

  get size(): number {
    return this.#members.size;
  }

  /** Sockets open from an address. */
  countAt(address: string): number {
    return this.#perAddress.get(address) ?? 0;
  }

  add(ws: WebSocket, member: Member): void {
    ws.serializeAttachment(member);
    this.#track(ws, member);
  }

  #track(ws: WebSocket, member: Member): void {
    this.#members.set(ws, member);
    this.#perAddress.set(member.address, this.countAt(member.address) + 1);
  }

  get(ws: WebSocket): Member | undefined {
    return this.#members.get(ws);
  }

  /** Writes a member's changes through to its socket's attachment. */
  save(ws: WebSocket, member: Member): void {
    ws.serializeAttachment(member);
  }

  /** Removes the socket; returns its member only the first time, so a leave is announced once. */
  remove(ws: WebSocket): Member | undefined {
    const member = this.#members.get(ws);
    if (member === undefined) return undefined;
    this.#members.delete(ws);
    const left = this.countAt(member.address) - 1;
    if (left > 0) this.#perAddress.set(member.address, left);
    else this.#perAddress.delete(member.address);
    try {
      ws.serializeAttachment(null);
    } catch {
      // The socket is already gone; the attachment goes with it.
    }
    return member;
  }

  users(): User[] {
    return Array.from(this.#members.values(), toUser);
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
    for (const member of this.#members.values()) {
      if (Number(member.id) <= from) continue;
      if (users.length === limit) return { users, more: true };
      users.push(toUser(member));
    }
    return { users, more: false };
  }

  entries(): IterableIterator<[WebSocket, Member]> {
    return this.#members.entries();
  }
}

/**
 * Whose namespace a member's message ids live in: its stable client id, so a
 * resend after a reconnect is recognised, or else its connection. The `#`
 * cannot occur in a client id, so the two never collide.
 */
export function senderOf(member: Member): string {
  return member.client ?? `#${member.id}`;
}

export function toUser(member: Member): User {
  return { id: member.id, name: member.name };
}
