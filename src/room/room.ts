import { IDENTITY_HEADER, identityFrom, keysOf, type Identity } from "../auth/token";
import type { Env } from "../platform/env";
import { log } from "../platform/log";
import {
  fullBucket,
  type Bucket,
  type DeleteFrame,
  type DeleteRequest,
  type HistoryFrame,
  type LeaveReason,
  type MessagePage,
  type ModeratedFrame,
  type ModerationFrame,
  type Refusal,
  type RoomInfo,
  type SearchPage,
  type ServerFrame,
  type MyRoom,
  type ThreadPage,
} from "../protocol";
import { defaultName } from "../protocol/names";
import type { Departure, Forward } from "../shard/messages";
import { SocketObject } from "../sockets/socket-object";
import { identify, type Member, type Received } from "../sockets/socket-set";
import { isWebSocketUpgrade, jsonError, refusalResponse } from "../worker/http";
import { parseJoin, roomSegment } from "../worker/join";
import { addressKey } from "./addresses";
import { connectingTooFast, refusal } from "./admission";
import { RoomApi, type Caller, type HttpReaction, type Post, type PostResult, type Read } from "./api";
import { Broadcast } from "./broadcast";
import { replay, type ReplayFrom } from "./replay";
import { roomParts, type RoomParts } from "./parts";
import { localPeer, remotePeer, type Ending, type Peer } from "./peer";
import { FramePipeline } from "./pipeline";
import { handOver, placeOn } from "./placement";
import { Receipts } from "./receipts";
import { accountOf, entryOf, toUser, type Entry } from "./roster";
import { personOf } from "./sanctions";
import { summaryFor } from "./summary";
import { TypingIndicator } from "./typing";
import { Upkeep } from "./upkeep";
import { welcomeOf } from "./welcome";

/**
 * One chat room, and the single writer of its history. It accepts sockets
 * through the Hibernation API up to `SHARD_SIZE`, and places the rest on
 * shard objects (`../shard/shard.ts`) that relay what it sends them; identity lives
 * in attachments, messages, counters and the shards' members in SQLite.
 * The Worker calls the typed methods below for the HTTP API, and shards for
 * their sockets' frames. What the room does is in the modules beside this
 * one; this class builds them and hands each event to the one it concerns.
 */
export class Room extends SocketObject {
  readonly #parts: RoomParts;
  readonly #broadcast: Broadcast;
  readonly #typing: TypingIndicator;
  readonly #receipts: Receipts;
  readonly #pipeline: FramePipeline;
  readonly #upkeep: Upkeep;
  readonly #api: RoomApi;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    const { config, sockets, schedule } = this;
    const name = this.objectName;
    const parts = roomParts(ctx, name, config, sockets, schedule, {
      stub: (k) => this.env.SHARDS.getByName(`${name}#${k}`),
      lost: (id) => this.#depart({ id, reason: "error", code: 1006 }),
    });
    const broadcast = new Broadcast(parts);
    const expel = (entry: Entry, why: Ending) => this.#expel(entry, why);
    this.#parts = parts;
    this.#broadcast = broadcast;
    this.#typing = new TypingIndicator(parts, (frame) => broadcast.toEveryone(frame));
    this.#receipts = new Receipts({ ...parts, broadcast });
    this.#upkeep = new Upkeep({ ...parts, broadcast, expel, tick: (now, online, first) => this.tick(now, online, first) });
    this.#api = new RoomApi({ ...parts, broadcast, expel, typing: this.#typing, settle: () => this.settle() });
    this.#pipeline = new FramePipeline({
      ...parts,
      broadcast,
      typing: this.#typing,
      receipts: this.#receipts,
      expel,
      replay: (from) => this.#replay(from),
      keys: keysOf(env),
      afterFrames: () => this.#afterFrames(),
    });
  }

  /** Takes the socket itself while it has space, else places it on a shard; either way its welcome, history and join are queued here. */
  protected override async join(request: Request): Promise<Response> {
    const { config, store, history, sockets, roster, shards, addresses } = this.#parts;
    const url = new URL(request.url);
    const parsed = parseJoin(roomSegment(url.pathname) ?? "", url.searchParams);
    if (!parsed.ok) return jsonError(400, parsed.code, parsed.message);
    if (!isWebSocketUpgrade(request)) return jsonError(426, "upgrade_required", "expected a WebSocket upgrade");
    const { room, name, format, since, client, epoch, batch } = parsed.join;
    const now = Date.now();
    const address = addressKey(request.headers.get("CF-Connecting-IP"));
    // Every attempt counts, refused ones too, so hammering only lengthens the wait.
    const identity = identityFrom(request.headers.get(IDENTITY_HEADER));
    const attempt = addresses.takeConnect(address, now);
    const person = personOf(address, client, identity);
    const refused = attempt.ok ? refusal(person, now, this.#parts) : connectingTooFast(attempt.retryAfterMs);
    if (refused !== null) return refusalResponse(refused);

    const number = store.nextConnectionNumber();
    const member: Member = {
      id: String(number),
      name: name ?? defaultName(number),
      format,
      joinedAt: now,
      address,
      bucket: fullBucket(config.rateLimitPer10s, now),
    };
    if (client !== null) member.client = client;
    if (batch) member.batch = true;
    if (identity !== null) identify(member, identity);
    // Either of a direct conversation's two may moderate it: a ban is how one stops hearing from the other.
    if (this.#parts.direct.has(identity?.sub)) member.moderator = true;
    if (identity?.sub !== undefined) this.#joined(identity.sub, member, now);
    const shard = placeOn(roster, config.shardSize);
    // Messages still waiting for their commit are in the history sent below,
    // so they go to everyone else first and never twice to this socket.
    this.#broadcast.flush();

    // Welcome, history and the join are queued in this one synchronous
    // section: every message after the history's lastSeq reaches this socket
    // live, so there is no gap and no duplicate at the seam; and every
    // presence event after this join reaches it in a presence frame, and
    // none before.
    let socket: WebSocket | null = null;
    let peer: Peer;
    if (shard === 0) {
      const pair = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
      socket = pair[0];
      this.ctx.acceptWebSocket(pair[1]);
      sockets.add(pair[1], member);
      roster.add(entryOf(member, 0));
      peer = localPeer(pair[1], member, sockets, roster);
    } else {
      member.mark = shards.mark(shard);
      member.after = history.lastSeq;
      const entry = entryOf(member, shard);
      roster.add(entry);
      peer = remotePeer(entry, shards);
    }
    const online = roster.size;
    const ongoing = [this.#typing.current(), this.#receipts.current()];
    for (const frame of welcomeOf(this.#parts, room, member, now, this.#replay({ since, epoch }), ongoing)) peer.deliver(frame);
    this.#broadcast.record({ kind: "joined", user: toUser(member) });
    log({ event: "connect", room, id: member.id, format, online });

    const response =
      socket !== null
        ? new Response(null, { status: 101, webSocket: socket })
        : await handOver(request, shard, member, shards, (departure) => this.#depart(departure));
    // The first socket starts the ticks one period from now, whatever was scheduled for an empty room.
    await this.schedule.arm(online === 1);
    return response;
  }

  /**
   * A token account joined: the room remembers it for mentions, and its
   * own object lists this room among its rooms. That call goes on after the
   * upgrade, and a failed one only leaves the list a room short until the
   * next join.
   */
  #joined(sub: string, member: Member, now: number): void {
    this.#parts.accounts.seen(sub, member.name, member.id, now);
    const listed = this.env.ACCOUNTS.getByName(sub).joined(this.#parts.name, now);
    this.ctx.waitUntil(listed.catch((error: unknown) => this.logError("account", error)));
  }

  /** What is new here for account `sub`, for `GET /api/me/rooms`. */
  summary(sub: string): MyRoom {
    this.trace("summary");
    const { name, history, store, reads } = this.#parts;
    return summaryFor(this.ctx.storage.sql, store, name, history.lastSeq, sub, reads.of(accountOf({ sub })));
  }

  /** Opens this room as the direct conversation of accounts `a` and `b`, for `POST /api/dms`; whether it was not open before. */
  openDirect(a: string, b: string): boolean {
    this.trace("openDirect");
    return this.#parts.direct.open(a, b);
  }

  /**
   * What an upgrade from `address` would be refused with now, for a client
   * that cannot read the status of a refused upgrade (a browser) and asks
   * over HTTP instead; null if it would be let in. Takes nothing and writes
   * nothing.
   */
  admission({ address, client, identity }: Caller): Refusal | null {
    this.trace("admission");
    const key = addressKey(address);
    const now = Date.now();
    const wait = this.#parts.addresses.connectWaitMs(key, now);
    const person = personOf(key, client, identity);
    return wait > 0 ? connectingTooFast(wait) : refusal(person, now, this.#parts);
  }

  #replay(from: ReplayFrom): HistoryFrame {
    const { history, config, store } = this.#parts;
    return replay(history, from, config.historyOnJoin, config.historyReplayLimit, store.epoch!);
  }

  protected override async received(ws: WebSocket, { member, own, lane, payload }: Received): Promise<void> {
    const { sockets, roster } = this.#parts;
    // The pipeline saves the member with its address's bucket; a lane's frame leaves that alone, and its lane is saved here.
    if (lane !== null) sockets.save(ws, member);
    const renewal = this.#pipeline.handle(localPeer(ws, member, sockets, roster), payload, own, lane, member.addressFrames);
    if (!own.ok && own.flood) this.endFlood(ws);
    await this.#afterFrames();
    await renewal;
  }

  /**
   * Frames and departures from a shard's sockets, in the order they
   * happened there. Answers each frame with its address's bucket, for the
   * sender's attachment. A token being checked is not waited for: it holds
   * up its own member's frames, not the shard's.
   */
  async fromShard(shard: number, events: Array<Forward | Departure>): Promise<Array<Bucket | null>> {
    this.trace("fromShard");
    const { roster, shards } = this.#parts;
    const buckets = events.map((event) => {
      if ("reason" in event) {
        this.#depart(event);
        return null;
      }
      const entry = roster.get(event.id);
      if (entry?.shard !== shard) return null;
      let kept: Bucket | null = null;
      const keep = (addressFrames: Bucket) => {
        kept = addressFrames;
      };
      void this.#pipeline.handle(remotePeer(entry, shards, keep), event.data, event.own, event.lane, event.addressFrames);
      return kept;
    });
    await this.#afterFrames();
    return buckets;
  }

  /** After frames were handled: their messages go out once stored, and the alarm runs while anyone is here. */
  async #afterFrames(): Promise<void> {
    if (this.#parts.sequencer.hasUnsent) await this.#broadcast.whenStored();
    await this.settle();
  }

  /** Its own frame to a socket goes after the messages waiting to go out, so that it cannot overtake their acks. */
  protected override send(ws: WebSocket, frame: ServerFrame): void {
    this.#broadcast.flush();
    super.send(ws, frame);
  }

  /** Expires tokens, ticks, trims and asks each shard who it holds (see `Upkeep`). */
  protected override upkeep(now: number): Promise<void> {
    return this.#upkeep.run(now);
  }

  protected override alarmDue(now: number): number | null {
    return this.#upkeep.due(now);
  }

  protected override settle(): Promise<void> {
    return this.#upkeep.settle();
  }

  /** The room's state for `GET /api/rooms/<room>`. */
  info(caller: Caller): Read<RoomInfo> {
    this.trace("info");
    return this.#api.info(caller);
  }

  /** A page of messages for `GET /api/rooms/<room>/messages` (see `RoomApi.messages`). */
  messages(since: number | null, limit: number, caller: Caller): Read<MessagePage> {
    this.trace("messages");
    return this.#api.messages(since, limit, caller);
  }

  /** A page of a message's thread for `GET /api/rooms/<room>/messages?thread=` (see `RoomApi.thread`). */
  thread(seq: number, after: number, limit: number, caller: Caller): Read<ThreadPage> {
    this.trace("thread");
    return this.#api.thread(seq, after, limit, caller);
  }

  /** A page of search results for `GET /api/rooms/<room>/search` (see `RoomApi.search`). */
  search(q: string, before: number | null, limit: number, caller: Caller): Read<SearchPage> {
    this.trace("search");
    return this.#api.search(q, before, limit, caller);
  }

  /** A reaction over HTTP (see `RoomApi.react`). */
  react(reaction: HttpReaction): Promise<PostResult> {
    this.trace("react");
    return this.#api.react(reaction);
  }

  /** A message posted over HTTP, stored and broadcast as if a socket had sent it (see `RoomApi.post`). */
  post(post: Post): Promise<PostResult> {
    this.trace("post");
    return this.#api.post(post);
  }

  /** A moderation over HTTP, from a moderator's token the Worker has checked (see `RoomApi.moderation`). */
  moderation(frame: ModerationFrame | DeleteRequest, moderator: Caller & { identity: Identity }): Promise<ModeratedFrame | DeleteFrame | Refusal> {
    this.trace("moderation");
    return this.#api.moderation(frame, moderator);
  }

  /** Ends someone's socket on whichever object holds it, and announces the leave now. */
  #expel(entry: Entry, why: Ending): void {
    if (entry.shard === 0) {
      const ws = this.sockets.socketOf(entry.id);
      if (ws !== undefined) {
        this.end(ws, why);
        return;
      }
    } else {
      this.#parts.shards.push(entry.shard, { close: { to: entry.id, closing: why } });
    }
    this.#depart({ id: entry.id, reason: why.reason, code: why.code });
  }

  protected override left(member: Member, reason: LeaveReason, code: number): void {
    this.#depart({ id: member.id, reason, code });
  }

  /** Someone left, from whichever object: announced once, however often it is reported. */
  #depart({ id, reason, code }: Departure): void {
    const { name, roster, addresses, shards } = this.#parts;
    const entry = roster.remove(id);
    if (entry === undefined) return;
    // Its attachment held the newest copy of its address's frame bucket, perhaps.
    addresses.saveFrames(entry.address, roster.countAt(entry.address) > 0, Date.now());
    if (entry.shard !== 0 && roster.countOn(entry.shard) === 0) shards.forget(entry.shard);
    this.#typing.stop(id);
    const online = roster.size;
    this.#broadcast.record({ kind: "left", user: toUser(entry), reason });
    log({ event: "close", room: name, id, code, reason, online });
  }
}
