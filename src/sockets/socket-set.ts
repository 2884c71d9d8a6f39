import { Batching } from "./batching";
import { isSilent } from "./heartbeat";
import { fullBucket, laneOf, take, type Bucket, type Lane } from "../protocol";
import { Outgoing, type ClosingFrame, type Format, type ServerFrame } from "../protocol";
import type { Mark } from "../shard/messages";
import type { Identity } from "../auth/token";
import type { Config } from "../platform/config";

const OPEN = 1;

/**
 * One connection, as the object that holds its socket keeps it: in the
 * socket's attachment, so that it survives hibernation, together with the
 * socket's own state (its limit, its format, where its stream starts). The
 * room's roster knows every connection, wherever its socket is, as an
 * `Entry`; clients see one as a `User`. Kept to a few short fields:
 * attachments are capped at 2 KB.
 */
export interface Member {
  id: string;
  name: string;
  format: Format;
  joinedAt: number;
  /** When the socket last sent a frame that reached its object; pings do not count here. */
  seenAt?: number;
  /** Its address's key (`addressKey`), whose limits it shares. */
  address: string;
  /**
   * The address's shared frame bucket as this socket's last frame left it,
   * so that hibernation does not refill it (see `AddressBook`).
   */
  addressFrames?: Bucket;
  /** Whether it takes `batch` frames while its object is busy: `?batch=1`, or a `batching` request. */
  batch?: true;
  /** The stable id from `?client=`, if the client gave one. */
  client?: string;
  /** The socket's rate limit, here so that hibernation does not refill it. */
  bucket: Bucket;
  /** Its lanes' budgets, for the same reason, each from the first frame that takes from it. */
  lanes?: Partial<Record<Lane, Bucket>>;
  /** From the token it joined or renewed with, if any: see `Identity`. */
  verified?: true;
  sub?: string;
  moderator?: true;
  /** When that token expires, in seconds since the epoch. */
  tokenExp?: number;
  /**
   * On a shard: the newest seq its welcome's history held, and where in the
   * room's stream to the shard it joined. Only what comes after both is its.
   */
  after?: number;
  mark?: Mark;
}

/** Copies who a member's token says they are into their attachment. */
export function identify(member: Member, identity: Identity): void {
  member.verified = true;
  member.tokenExp = identity.exp;
  if (identity.sub !== undefined) member.sub = identity.sub;
  if (identity.role === "moderator") member.moderator = true;
}

/** A frame as the room handles it: its text, or for a binary frame only its size, which is all the room reads of one. */
export type Payload = string | { binaryBytes: number };

/** What a socket's frame costs it against its own limit: nothing, or a wait, and whether it is now flooding. */
export type OwnVerdict = { ok: true } | { ok: false; retryAfterMs: number; flood: boolean };

/** A frame from a socket still here: its member, what the frame cost it and from which lane (null: its frame bucket), and the frame as the room handles it. */
export interface Received {
  member: Member;
  own: OwnVerdict;
  lane: Lane | null;
  payload: Payload;
}

/** What a socket may send per 10 s: frames, and each lane's. */
export type Budgets = Pick<Config, "rateLimitPer10s" | "typingPer10s" | "reactionsPer10s">;

/**
 * The sockets one Durable Object holds, the room's or a shard's: each with
 * its member in the attachment, kept in memory as a cache of them and
 * rebuilt on wake. A socket whose attachment was cleared has been announced
 * as gone.
 */
export class SocketSet {
  readonly #members = new Map<WebSocket, Member>();
  readonly #byId = new Map<string, WebSocket>();
  readonly #batching: Batching;

  /** Batches as `config` says while the object is busy; `name` is what its log lines call it. */
  constructor(config: Pick<Config, "batchMs" | "batchAbove">, name: () => string) {
    this.#batching = new Batching(config.batchMs, config.batchAbove, send, name);
  }

  static restore(sockets: Iterable<WebSocket>, config: Pick<Config, "batchMs" | "batchAbove">, name: () => string): SocketSet {
    const set = new SocketSet(config, name);
    for (const ws of sockets) {
      const member = ws.deserializeAttachment() as Member | null;
      if (member) set.#track(ws, member);
    }
    return set;
  }

  get size(): number {
    return this.#members.size;
  }

  add(ws: WebSocket, member: Member): void {
    ws.serializeAttachment(member);
    this.#track(ws, member);
  }

  #track(ws: WebSocket, member: Member): void {
    this.#members.set(ws, member);
    this.#byId.set(member.id, ws);
  }

  get(ws: WebSocket): Member | undefined {
    return this.#members.get(ws);
  }

  /** The socket of the member with this id, while it is here. */
  socketOf(id: string): WebSocket | undefined {
    return this.#byId.get(id);
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
    this.#byId.delete(member.id);
    this.#batching.forget(ws);
    try {
      ws.serializeAttachment(null);
    } catch {
      // The socket is already gone; the attachment goes with it.
    }
    return member;
  }

  /**
   * Closes a socket from this object's side, or answers the client's close:
   * the runtime does not answer a close on a hibernatable socket, and
   * without this the client waits in CLOSING and ends with 1006. Returns
   * its member the first time, as `remove` does.
   */
  close(ws: WebSocket, code: number, why: string): Member | undefined {
    this.#batching.release(ws);
    const member = this.remove(ws);
    try {
      ws.close(sendableCloseCode(code), why);
    } catch {
      // Already closed.
    }
    return member;
  }

  /**
   * Closes a socket for a reason of this object's: the closing frame goes
   * first, since a client may see the close itself only much later (see
   * `ClosingFrame`). Returns its member the first time, as `remove` does.
   */
  end(ws: WebSocket, why: ClosingFrame): Member | undefined {
    this.send(ws, why);
    return this.close(ws, why.code, why.message);
  }

  entries(): IterableIterator<[WebSocket, Member]> {
    return this.#members.entries();
  }

  ids(): string[] {
    return Array.from(this.#byId.keys());
  }

  /**
   * A frame from a socket that is still here, its member noted as heard
   * from now. It takes from the socket's frame bucket, or from the lane its
   * start names, before anything reads it. Refused frames cost too: a
   * client that keeps sending while refused runs into debt and ends up
   * flooding. The caller saves the member once it is done with the frame.
   */
  receive(ws: WebSocket, data: string | ArrayBuffer, budgets: Budgets, now: number): Received | undefined {
    const member = this.#members.get(ws);
    if (member === undefined) return undefined;
    member.seenAt = now;
    const lane = typeof data === "string" ? laneOf(data) : null;
    const capacity = lane === null ? budgets.rateLimitPer10s : lane === "typing" ? budgets.typingPer10s : budgets.reactionsPer10s;
    const verdict = take(lane === null ? member.bucket : laneBucket(member, lane, capacity, now), capacity, now);
    const own: OwnVerdict = verdict.ok ? verdict : { ok: false, retryAfterMs: verdict.retryAfterMs, flood: verdict.flood };
    return { member, own, lane, payload: typeof data === "string" ? data : { binaryBytes: data.byteLength } };
  }

  /** The sockets that have been silent for `timeoutMs` (see `isSilent`); the runtime knows when each last pinged. */
  silent(now: number, timeoutMs: number, ctx: DurableObjectState): WebSocket[] {
    const found: WebSocket[] = [];
    for (const [ws, member] of this.#members) {
      const lastPingAt = ctx.getWebSocketAutoResponseTimestamp(ws)?.getTime() ?? null;
      if (isSilent({ joinedAt: member.joinedAt, seenAt: member.seenAt, lastPingAt }, now, timeoutMs)) found.push(ws);
    }
    return found;
  }

  /** Sends a frame to every socket, encoded once per format. */
  fanOut(frame: ServerFrame): void {
    const out = new Outgoing(frame);
    this.toEach((_, member) => out.in(member.format));
  }

  /** Sends every socket its own text of one frame (null: nothing for it), which counts as one broadcast. */
  toEach(textFor: (ws: WebSocket, member: Member) => string | null): void {
    this.#batching.broadcast(Date.now());
    for (const [ws, member] of this.#members) this.#out(ws, member, textFor(ws, member));
  }

  /**
   * Sends one socket a frame. The answer to a `batching` request also
   * switches the socket, where the answer stands among its frames: what the
   * window holds for it goes first, and only frames after the answer come
   * batched.
   */
  send(ws: WebSocket, frame: ServerFrame): void {
    const member = this.#members.get(ws);
    if (frame.type === "batching" && member !== undefined) {
      this.#batching.release(ws);
      send(ws, new Outgoing(frame).in(member.format));
      if (frame.on) member.batch = true;
      else delete member.batch;
      this.save(ws, member);
      return;
    }
    const data = new Outgoing(frame).in(member?.format ?? "json");
    if (member === undefined) send(ws, data);
    else this.#out(ws, member, data);
  }

  /** Sends one socket a frame already in its format (null: nothing to send). */
  deliver(ws: WebSocket, data: string | null): void {
    const member = this.#members.get(ws);
    if (member === undefined) send(ws, data);
    else this.#out(ws, member, data);
  }

  #out(ws: WebSocket, member: Member, data: string | null): void {
    if (data !== null) this.#batching.out(ws, member.batch, member.format, data);
  }
}

function laneBucket(member: Member, lane: Lane, capacity: number, now: number): Bucket {
  member.lanes ??= {};
  member.lanes[lane] ??= fullBucket(capacity, now);
  return member.lanes[lane];
}

/** A socket that fails to take a frame never stops the others from getting it. */
function send(ws: WebSocket, data: string | null): void {
  if (data === null || ws.readyState !== OPEN) return;
  try {
    ws.send(data);
  } catch {
    // Its close event will announce the leave.
  }
}

/** 1005, 1006 and 1015 only describe a close and may not be sent in one. */
function sendableCloseCode(code: number): number {
  return code === 1005 || code === 1006 || code === 1015 ? 1000 : code;
}
