import { DurableObject } from "cloudflare:workers";
import { AddressBook, addressKey } from "./addresses";
import { connectingTooFast, refusal } from "./admission";
import { Alarm } from "../sockets/alarm";
import { alarmPeriodMs, readConfig, type Config } from "../platform/config";
import type { Env } from "../platform/env";
import { History, replay, split, type ReplayFrom } from "./history";
import { moderate, personOf, Sanctions, type Person } from "./sanctions";
import { HTTP_USER_ID } from "./changes";
import { isWebSocketUpgrade, jsonError, refusalResponse } from "../worker/http";
import { parseJoin, roomSegment } from "../worker/join";
import { exceedsBytes, fullBucket, type Bucket } from "../protocol";
import { Buckets, readCost } from "../sockets/buckets";
import { describe, log } from "../platform/log";
import { defaultName } from "../protocol/names";
import { PresenceBatch, PresenceQueue, presenceWindowMs, type PresenceEvent } from "./presence";
import {
  closing,
  errorFrame,
  parseClientFrame,
  positionOf,
  type HistoryFrame,
  type LeaveReason,
  type MessagePage,
  type DeleteFrame,
  type DeleteRequest,
  type ClosingFrame,
  type ClosingReason,
  type ErrorFrame,
  type ModeratedFrame,
  type ModerationFrame,
  type Refusal,
  type RoomInfo,
  type AckFrame,
  type RenamedFrame,
  type RenewedFrame,
  type UsersFrame,
  type ClientFrame,
  type ServerFrame,
} from "../protocol";
import { entryOf, Roster, senderOf, toUser, type Entry } from "./roster";
import { Sequencer, type Published, type Stored } from "./sequencer";
import type { Departure, Forward } from "../shard/messages";
import { Shards } from "../shard/outbox";
import { deliver, identify, SocketSet, type Member, type OwnVerdict, type Payload } from "../sockets/socket-set";
import { RoomStore } from "./store";
import { IDENTITY_HEADER, identityFrom, keysOf, renewal, senderOfIdentity, verifyToken, type Identity } from "../auth/token";

/** Rows one alarm run deletes at most, so trimming never holds the room for long. */
export const TRIM_BATCH = 1000;
/** How soon trimming runs, or its next batch, in a room nobody is connected to whose history outgrew its limit. */
const TRIM_DELAY_MS = 5_000;

/** Who makes an HTTP request of the room, as the Worker found them: what sanctions and limits are checked against. */
export interface Caller {
  /** `CF-Connecting-IP`. */
  address: string;
  /** `?client=`, already checked. */
  client: string | null;
  /** Who their token names, if they sent one. */
  identity: Identity | null;
}

/** A message posted over HTTP, already checked by the Worker. */
export interface Post extends Caller {
  name: string;
  text: string;
  id?: string;
}

export type PostResult = Stored | { ok: false; refusal: Refusal };

/** What the room answers a read with: what was asked for, or why not. */
export type Read<T> = T | { refusal: Refusal };

/** What answers a client's request: the frames that carry its `id` back. */
type Answer = AckFrame | HistoryFrame | UsersFrame | RenamedFrame | RenewedFrame | ModeratedFrame | ErrorFrame;

/** Why a close the room decides happens, as the member is told it and as everyone else hears it. */
type Ending = ClosingFrame & { reason: Exclude<ClosingReason, "tryAgain"> };

/** Someone whose frame the room handles, on the room's own socket or on a shard's. */
interface Peer {
  entry: Entry;
  /** Sends a frame to them at once, after nothing else. */
  deliver(frame: ServerFrame): void;
  /** Keeps their address's bucket as their frame left it, where their socket is. */
  keep(addressFrames: Bucket): void;
  /** A change to who they are (a name, a renewed token), for their socket's attachment. */
  update(change: Partial<Member>): void;
}

/**
 * One chat room, and the single writer of its history. It accepts sockets
 * through the Hibernation API up to `SHARD_SIZE`, and places the rest on
 * shard objects (`../shard/shard.ts`) that relay what it sends them; identity lives
 * in attachments, messages, counters and the shards' members in SQLite.
 * The Worker calls the typed methods below for the HTTP API, and shards for
 * their sockets' frames.
 */
export class Room extends DurableObject<Env> {
  readonly #config: Config;
  readonly #store: RoomStore;
  readonly #history: History;
  readonly #sequencer: Sequencer<Peer>;
  readonly #sockets: SocketSet;
  readonly #roster: Roster;
  readonly #shards: Shards;
  readonly #addresses: AddressBook;
  readonly #sanctions: Sanctions;
  readonly #presence = new PresenceQueue();
  /** Ends the presence batch window, while one is open. */
  #presenceTimer: ReturnType<typeof setTimeout> | undefined;
  readonly #alarm: Alarm;
  readonly #postBuckets = new Buckets();
  readonly #readBuckets = new Buckets();
  /**
   * Members whose token is being checked, with the frames they sent since:
   * those are handled once its answer is out, so that answers keep the
   * order of the frames they answer. Nobody else waits.
   */
  readonly #waiting = new Map<string, Array<() => void>>();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#config = readConfig(env);
    const sql = ctx.storage.sql;
    this.#store = new RoomStore(sql, [History.SCHEMA, AddressBook.SCHEMA, Roster.SCHEMA, Sanctions.SCHEMA]);
    this.#sanctions = new Sanctions(sql, this.#store);
    this.#history = new History(ctx.storage, this.#store);
    this.#sequencer = new Sequencer(this.#history, this.#config.historyLimit);
    this.#alarm = new Alarm(ctx.storage, (now) => this.#alarmDue(now));
    this.#addresses = new AddressBook(sql, this.#store, {
      connectsPerMinute: this.#config.connectsPerMinute,
      framesPer10s: this.#config.addressShare * this.#config.rateLimitPer10s,
    });
    this.#sockets = SocketSet.restore(ctx.getWebSockets());
    this.#roster = new Roster(sql, this.#store, Array.from(this.#sockets.entries(), ([, member]) => member));
    for (const [, member] of this.#sockets.entries()) {
      if (member.addressFrames !== undefined) this.#addresses.restoreFrames(member.address, member.addressFrames);
    }
    this.#shards = new Shards({
      room: this.#room,
      stub: (k) => this.env.SHARDS.getByName(`${this.#room}#${k}`),
      online: () => this.#roster.size,
      broadcastSeq: () => this.#sequencer.broadcastSeq,
      // Whatever a shard's sockets missed, changes to any message included: some of them may hold it.
      history: (after, limit) => this.#history.after(after, limit, Number.MAX_SAFE_INTEGER),
      count: (k) => this.#roster.countOn(k),
      members: (k) => this.#roster.onShard(k),
      lost: (id) => this.#depart({ id, reason: "error", code: 1006 }),
    });
    // Answered by the runtime itself, so heartbeats never wake the room.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair("ping", "pong"));
  }

  #trace(handler: string): void {
    if (this.#config.traceWakeups) log({ event: "wake", room: this.#room, handler });
  }

  get #room(): string {
    return this.ctx.id.name ?? this.ctx.id.toString();
  }

  override async fetch(request: Request): Promise<Response> {
    this.#trace("fetch");
    try {
      return await this.#connect(request);
    } catch (error) {
      log({ event: "error", room: this.#room, handler: "fetch", message: describe(error) });
      return jsonError(500, "internal", "the room could not accept the connection");
    }
  }

  async #connect(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const parsed = parseJoin(roomSegment(url.pathname) ?? "", url.searchParams);
    if (!parsed.ok) return jsonError(400, parsed.code, parsed.message);
    if (!isWebSocketUpgrade(request)) return jsonError(426, "upgrade_required", "expected a WebSocket upgrade");
    const { room, name, format, since, client, epoch } = parsed.join;
    const now = Date.now();
    const address = addressKey(request.headers.get("CF-Connecting-IP"));
    // Every attempt counts, refused ones too, so hammering only lengthens the wait.
    const identity = identityFrom(request.headers.get(IDENTITY_HEADER));
    const attempt = this.#addresses.takeConnect(address, now);
    const person = personOf(address, client, identity);
    const refusal = attempt.ok ? this.#refusal(person, now) : connectingTooFast(attempt.retryAfterMs);
    if (refusal !== null) return refusalResponse(refusal);

    const number = this.#store.nextConnectionNumber();
    const member: Member = {
      id: String(number),
      name: name ?? defaultName(number),
      format,
      joinedAt: now,
      address,
      bucket: fullBucket(this.#config.rateLimitPer10s, now),
    };
    if (client !== null) member.client = client;
    if (identity !== null) identify(member, identity);
    const shard = this.#placeOn();
    // Messages still waiting for their commit are in the history sent below,
    // so they go to everyone else first and never twice to this socket.
    this.#flush();

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
      this.#sockets.add(pair[1], member);
      this.#roster.add(entryOf(member, 0));
      peer = this.#localPeer(pair[1], member);
    } else {
      member.mark = this.#shards.mark(shard);
      member.after = this.#history.lastSeq;
      const entry = entryOf(member, shard);
      this.#roster.add(entry);
      peer = this.#remotePeer(entry);
    }
    const online = this.#roster.size;
    const { users, more } = this.#roster.page(null, this.#config.presenceListLimit);
    const you = toUser(member);
    const { tickSeconds, rateLimitPer10s, maxFrameBytes, maxMessageChars } = this.#config;
    const limits = { framesPer10s: rateLimitPer10s, frameBytes: maxFrameBytes, messageChars: maxMessageChars };
    peer.deliver({ type: "welcome", room, you, users, more, online, tickSeconds, limits, lastSeq: this.#history.lastSeq, epoch: this.#store.epoch!, at: now });
    peer.deliver(this.#replay({ since, epoch }));
    this.#record({ kind: "joined", user: you });
    log({ event: "connect", room, id: member.id, format, online });

    const response = socket !== null ? new Response(null, { status: 101, webSocket: socket }) : await this.#handOver(request, shard, member);
    // The first socket starts the ticks one period from now, whatever was scheduled for an empty room.
    await this.#alarm.arm(online === 1);
    return response;
  }

  /** Which object takes the next socket: the room while it has space, else the first shard that has. */
  #placeOn(): number {
    const size = this.#config.shardSize;
    let k = 0;
    while (this.#roster.countOn(k) >= size) k += 1;
    return k;
  }

  /** Hands the upgrade to the shard the member was placed on, whose 101 the client gets. */
  async #handOver(request: Request, shard: number, member: Member): Promise<Response> {
    const response = await this.#shards.place(request, { shard, member });
    if (response?.status === 101) return response;
    this.#depart({ id: member.id, reason: "error", code: 1011 });
    return response ?? jsonError(503, "unavailable", "the room could not open a connection; try again");
  }

  /** Why the room would refuse another socket from `person` now, or null if it would take it. */
  #refusal(person: Person, now: number): Refusal | null {
    return refusal(person, now, this.#sanctions, this.#roster, this.#config);
  }

  /**
   * What an upgrade from `address` would be refused with now, for a client
   * that cannot read the status of a refused upgrade (a browser) and asks
   * over HTTP instead; null if it would be let in. Takes nothing and writes
   * nothing.
   */
  admission({ address, client, identity }: Caller): Refusal | null {
    this.#trace("admission");
    const key = addressKey(address);
    const now = Date.now();
    const wait = this.#addresses.connectWaitMs(key, now);
    const person = personOf(key, client, identity);
    return wait > 0 ? connectingTooFast(wait) : this.#refusal(person, now);
  }

  #replay(from: ReplayFrom): HistoryFrame {
    return replay(this.#history, from, this.#config.historyOnJoin, this.#config.historyReplayLimit, this.#store.epoch!);
  }

  override async webSocketMessage(ws: WebSocket, data: string | ArrayBuffer): Promise<void> {
    this.#trace("webSocketMessage");
    try {
      const frame = this.#sockets.receive(ws, data, this.#config.rateLimitPer10s, Date.now());
      if (frame === undefined) return;
      const { member, own, payload } = frame;
      const renewal = this.#handle(this.#localPeer(ws, member), payload, own, member.addressFrames);
      if (!own.ok && own.flood) this.#end(ws, closing("flood", "you sent frames too fast for too long"));
      await this.#afterFrames();
      await renewal;
    } catch (error) {
      this.#fail(ws, "webSocketMessage", error);
    }
  }

  /**
   * Frames and departures from a shard's sockets, in the order they
   * happened there. Answers each frame with its address's bucket, for the
   * sender's attachment. A token being checked is not waited for: it holds
   * up its own member's frames, not the shard's.
   */
  async fromShard(shard: number, events: Array<Forward | Departure>): Promise<Array<Bucket | null>> {
    this.#trace("fromShard");
    const buckets = events.map((event) => {
      if ("reason" in event) {
        this.#depart(event);
        return null;
      }
      const entry = this.#roster.get(event.id);
      if (entry?.shard !== shard) return null;
      let kept: Bucket | null = null;
      void this.#handle(this.#remotePeer(entry, (addressFrames) => void (kept = addressFrames)), event.data, event.own, event.addressFrames);
      return kept;
    });
    await this.#afterFrames();
    return buckets;
  }

  /**
   * Handles one frame from anyone in the room, after its own limit was
   * taken by the object that holds its socket. Returns the token check it
   * started, if it was a renewal.
   */
  #handle(peer: Peer, data: Payload, own: OwnVerdict, addressFrames: Bucket | undefined): Promise<void> | undefined {
    const { entry } = peer;
    const waiting = this.#waiting.get(entry.id);
    if (waiting !== undefined) {
      waiting.push(() => void this.#handle(peer, data, own, addressFrames));
      return;
    }
    const now = Date.now();
    if (addressFrames !== undefined) this.#addresses.restoreFrames(entry.address, addressFrames);
    // Every frame counts against both limits, refused ones too, and what it cost is kept before anything else can fail.
    const shared = this.#addresses.takeFrame(entry.address, now);
    peer.keep(shared.copy);
    const reply = (frame: ServerFrame) => {
      this.#flush();
      peer.deliver(frame);
    };
    if (!own.ok || !shared.verdict.ok) {
      const retryAfterMs = Math.max(own.ok ? 0 : own.retryAfterMs, shared.verdict.ok ? 0 : shared.verdict.retryAfterMs);
      reply({ ...errorFrame("rate_limited", "too many frames; slow down"), retryAfterMs });
      return;
    }
    const max = this.#config.maxFrameBytes;
    if (typeof data === "string" ? exceedsBytes(data, max) : data.binaryBytes > max) {
      reply(errorFrame("too_large", `frames are at most ${max} bytes`));
      return;
    }
    if (typeof data !== "string") {
      reply(errorFrame("unsupported", "binary frames are not supported; send text"));
      return;
    }
    const parsed = parseClientFrame(data, this.#config.maxMessageChars);
    if (!parsed.ok) {
      reply(parsed.error);
      return;
    }
    const frame = parsed.frame;
    // Every answer names the frame it answers, when that had an id.
    const answer = (out: Answer) => reply(frame.id === undefined ? out : { ...out, id: frame.id });
    const sanction = this.#sanctions.refusal(entry, now, WRITES.has(frame.type));
    if (sanction !== null) {
      const { code, message, until } = sanction;
      answer({ type: "error", code, message, until });
      return;
    }
    switch (frame.type) {
      case "message": {
        const published = this.#sequencer.publish({ user: toUser(entry), text: frame.text, at: now, sender: senderOf(entry), id: frame.id }, peer);
        this.#answer(published, frame.id, answer);
        break;
      }
      case "edit":
      case "delete": {
        const { type: kind, seq: target, id } = frame;
        const actor = { user: toUser(entry), sender: senderOf(entry), moderator: entry.moderator === true };
        const published = this.#sequencer.change({ kind, target, id, ...(kind === "edit" && { text: frame.text }) }, actor, now, peer);
        this.#answer(published, id, answer);
        break;
      }
      case "rename": {
        if (entry.verified) {
          answer(errorFrame("rename_not_allowed", "your name comes from your token"));
          break;
        }
        const from = entry.name;
        this.#roster.rename(entry.id, frame.name);
        peer.update({ name: frame.name });
        this.#record({ kind: "renamed", user: toUser(entry), from });
        answer({ type: "renamed", user: toUser(entry), from });
        break;
      }
      case "who": {
        const page = this.#roster.page(frame.after ?? null, this.#config.presenceListLimit);
        answer({ type: "users", ...page, online: this.#roster.size });
        this.#presence.known(entry.id);
        break;
      }
      case "history":
        answer(this.#replay({ since: frame.after, epoch: null }));
        break;
      case "token":
        return this.#renew(peer, frame.token, answer);
      default:
        if (!entry.moderator) answer(errorFrame("forbidden", "only moderators may kick, ban or mute; a moderator's token says role: moderator"));
        else answer(this.#moderate(frame, now));
    }
  }

  /**
   * Answers a published message or change where the broadcast will not: a
   * new one's ack goes out after it, these need no commit and go now.
   */
  #answer(published: Published, id: string | undefined, reply: (frame: Answer) => void): void {
    if (!published.ok) reply(refusalOf(published));
    else if (published.duplicate && id !== undefined) reply({ type: "ack", id, seq: published.seq });
  }

  #moderate(frame: ModerationFrame, now: number): ModeratedFrame | ErrorFrame {
    return moderate(frame, now, this.#sanctions, this.#roster, (target, why) => this.#expel(target, why));
  }

  /**
   * A moderation over HTTP (`POST /api/rooms/<room>/moderation`), from the
   * moderator's token the Worker has checked: the same as from a socket. A
   * delete is answered with the frame everyone got.
   */
  async moderation(frame: ModerationFrame | DeleteRequest, moderator: Caller & { identity: Identity }): Promise<ModeratedFrame | DeleteFrame | Refusal> {
    this.#trace("moderation");
    const now = Date.now();
    const { identity } = moderator;
    const sanction = this.#sanctioned(moderator, now, frame.type === "delete");
    if (sanction !== null) return sanction;
    let answer: ModeratedFrame | DeleteFrame | ErrorFrame;
    if (frame.type === "delete") {
      const actor = { user: { id: HTTP_USER_ID, name: identity.name }, sender: senderOfIdentity(identity) ?? HTTP_USER_ID, moderator: true };
      const published = this.#sequencer.change({ kind: "delete", target: frame.seq }, actor, now);
      answer = published.ok ? { type: "delete", seq: frame.seq, change: published.seq, deletedAt: now } : refusalOf(published);
      await this.#broadcastWhenStored();
    } else {
      answer = this.#moderate(frame, now);
    }
    await this.#settle();
    return answer.type === "error" ? { status: 404, code: answer.code, message: answer.message } : answer;
  }

  /**
   * Renews a socket's token: a valid token for this room that names the
   * same person. The socket then lasts until the new expiry, with the new
   * token's role. The member's frames that arrive meanwhile wait for the
   * answer, and go once it is out.
   */
  async #renew(peer: Peer, token: string, answer: (frame: Answer) => void): Promise<void> {
    const { id } = peer.entry;
    this.#waiting.set(id, []);
    try {
      const check = await verifyToken(keysOf(this.env), token, this.#room, Date.now());
      const entry = this.#roster.get(id);
      // Gone while the token was checked, and what it sent meanwhile with it.
      if (entry === undefined) return;
      const renewed = renewal(check, entry);
      if (renewed.ok) {
        const { exp, moderator } = renewed;
        this.#roster.renew(entry.id, exp, moderator);
        peer.update({ tokenExp: exp, moderator: moderator ? true : undefined });
        answer({ type: "renewed", exp });
      } else {
        answer({ ...errorFrame(renewed.code, renewed.message), ...(renewed.retryAfterMs !== undefined && { retryAfterMs: renewed.retryAfterMs }) });
      }
    } catch (error) {
      log({ event: "error", room: this.#room, handler: "token", message: describe(error) });
      answer(errorFrame("internal", "the room could not check that token"));
    } finally {
      const waiting = this.#waiting.get(id) ?? [];
      this.#waiting.delete(id);
      if (this.#roster.get(id) !== undefined) for (const next of waiting) next();
    }
    await this.#afterFrames();
  }

  /** After frames were handled: their messages go out once stored, and the alarm runs while anyone is here. */
  async #afterFrames(): Promise<void> {
    if (this.#sequencer.hasUnsent) await this.#broadcastWhenStored();
    await this.#settle();
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    this.#trace("webSocketClose");
    try {
      this.#close(ws, "closed", code, reason);
      await this.#settle();
    } catch (error) {
      this.#fail(ws, "webSocketClose", error);
    }
  }

  override async webSocketError(ws: WebSocket, error: unknown): Promise<void> {
    this.#trace("webSocketError");
    try {
      log({ event: "error", room: this.#room, handler: "webSocketError", message: describe(error) });
      this.#close(ws, "error", 1006, "socket error");
      await this.#settle();
    } catch (failure) {
      this.#fail(ws, "webSocketError", failure);
    }
  }

  /**
   * Ticks, sweeps, trims, and asks each shard who it holds. Alarms are
   * at-least-once, so a retry only repeats a tick with the current time,
   * sweeps sockets that are already gone, trims what is already trimmed and
   * asks the shards again.
   */
  override async alarm(): Promise<void> {
    this.#trace("alarm");
    this.#alarm.fired();
    try {
      const now = Date.now();
      const timeout = this.#config.heartbeatTimeoutSeconds;
      for (const ws of this.#sockets.silent(now, timeout * 1000, this.ctx)) this.#end(ws, closing("timeout", `nothing heard from this connection for ${timeout} s`));
      // A token is taken up to the allowed clock skew past its exp, and so is its socket.
      for (const entry of this.#roster.expired(now - this.#config.authClockSkewSeconds * 1000)) this.#expel(entry, closing("expired", "your token expired"));
      if (this.#sockets.size > 0 && this.#config.tickSeconds > 0) {
        this.#flushPresence();
        this.#flush();
        this.#sockets.fanOut({ type: "tick", now, online: this.#roster.size });
      }
      this.#history.trim(this.#config.historyLimit, TRIM_BATCH);
      this.#addresses.prune(now, TRIM_BATCH);
      this.#sanctions.prune(now);
      await Promise.all(this.#roster.shards().map((k) => this.#shards.census(k)));
    } catch (error) {
      log({ event: "error", room: this.#room, handler: "alarm", message: describe(error) });
    }
    // Outside the try: if scheduling fails, throwing makes the runtime retry.
    await this.#settle();
  }

  /** The room's state for `GET /api/rooms/<room>`. */
  info(caller: Caller): Read<RoomInfo> {
    this.#trace("info");
    const refused = this.#readRefusal(caller, 1);
    if (refused !== null) return { refusal: refused };
    const users = this.#roster.users();
    const objects = (this.#sockets.size > 0 ? 1 : 0) + this.#roster.shards().length;
    return { room: this.#room, online: users.length, users, lastSeq: this.#history.lastSeq, objects };
  }

  /**
   * A page of messages for `GET /api/rooms/<room>/messages`: the latest
   * `limit`, or the first `limit` entries after `since`, as a history frame
   * has them.
   */
  messages(since: number | null, limit: number, caller: Caller): Read<MessagePage> {
    this.#trace("messages");
    const refused = this.#readRefusal(caller, readCost(limit));
    if (refused !== null) return { refusal: refused };
    const { oldestSeq, lastSeq } = this.#history;
    const entries = since === null ? this.#history.latest(limit) : this.#history.after(since, limit);
    return { ...split(entries), oldestSeq, lastSeq, gap: since !== null && this.#history.trimmedAfter(since), epoch: this.#store.epoch };
  }

  /**
   * Why an HTTP read is refused: a ban, or its address's read budget, which
   * a read of `cost` pages takes from; null if it may go ahead.
   */
  #readRefusal(caller: Caller, cost: number): Refusal | null {
    const now = Date.now();
    const banned = this.#sanctioned(caller, now, false);
    if (banned !== null) return banned;
    const verdict = this.#readBuckets.take(addressKey(caller.address), this.#config.rateLimitPer10s, now, cost);
    if (verdict.ok) return null;
    return { status: 429, code: "rate_limited", message: "too many reads from this address; try again later", retryAfterMs: verdict.retryAfterMs };
  }

  /** What the room's sanctions refuse an HTTP caller now, reading or `writing`. */
  #sanctioned({ address, client, identity }: Caller, now: number, writing: boolean): Refusal | null {
    return this.#sanctions.refusal(personOf(addressKey(address), client, identity), now, writing);
  }

  /**
   * Stores and broadcasts a message posted over HTTP, exactly as if a socket
   * had sent it, unless its poster is banned or muted or its address is
   * over the rate limit. HTTP posters have sender scopes of their own
   * (`post:…`), so no socket is ever the author of what they post.
   */
  async post(post: Post): Promise<PostResult> {
    this.#trace("post");
    const now = Date.now();
    const sanction = this.#sanctioned(post, now, true);
    if (sanction !== null) return { ok: false, refusal: sanction };
    const verdict = this.#postBuckets.take(addressKey(post.address), this.#config.rateLimitPer10s, now);
    if (!verdict.ok) {
      const { retryAfterMs } = verdict;
      return { ok: false, refusal: { status: 429, code: "rate_limited", message: "too many messages from this address; try again later", retryAfterMs } };
    }
    const sender = `post:${senderOfIdentity(post.identity) ?? post.client ?? ""}`;
    const published = this.#sequencer.publish({ user: { id: HTTP_USER_ID, name: post.name }, text: post.text, at: now, sender, id: post.id });
    await this.#broadcastWhenStored();
    await this.#alarm.arm();
    return published;
  }

  /**
   * Broadcasts the queued messages once their commit is confirmed. Frames
   * sent before it would be held back by the output gate until then anyway,
   * and a socket's frames only start moving when the gate opens; sent after
   * it, each one goes straight out. Measured in README.md#performance.
   */
  async #broadcastWhenStored(): Promise<void> {
    await this.ctx.storage.sync();
    this.#flush();
  }

  /**
   * Sends the queued messages, after the presence news that came before
   * them, each followed by its sender's ack, so that nothing sent to that
   * socket later can overtake the ack: clients match answers to what they
   * sent by order. Frames sent before their commit still wait for it at the
   * output gate.
   */
  #flush(): void {
    if (!this.#sequencer.hasUnsent) return;
    this.#flushPresence();
    const shards = this.#roster.shards();
    let messages = 0;
    for (let unsent = this.#sequencer.next(); unsent !== undefined; unsent = this.#sequencer.next()) {
      const { frame, ack } = unsent;
      this.#sockets.fanOut(frame);
      for (const k of shards) this.#shards.push(k, { frame });
      if (ack !== undefined) ack.to.deliver({ type: "ack", id: ack.id, seq: positionOf(frame) });
      messages++;
    }
    // What one flush costs the room, for `npm run bench`: its own sends, and one call per shard at most.
    if (this.#config.traceWakeups) log({ event: "fanout", room: this.#room, messages, sockets: this.#sockets.size, shards: shards.length });
  }

  /** Answers a client's close, or closes a failed socket, and announces the leave now: no close event may follow. */
  #close(ws: WebSocket, reason: LeaveReason, code: number, why: string): void {
    const member = this.#sockets.close(ws, code, why);
    if (member !== undefined) this.#depart({ id: member.id, reason, code });
  }

  /** Closes a socket for a reason of the room's, which its last frame gives, and announces the leave now. */
  #end(ws: WebSocket, why: Ending): void {
    const member = this.#sockets.end(ws, why);
    if (member !== undefined) this.#depart({ id: member.id, reason: why.reason, code: why.code });
  }

  /** Ends someone's socket on whichever object holds it, and announces the leave now. */
  #expel(entry: Entry, why: Ending): void {
    if (entry.shard === 0) {
      const ws = this.#sockets.socketOf(entry.id);
      if (ws !== undefined) return this.#end(ws, why);
    } else {
      this.#shards.push(entry.shard, { close: { to: entry.id, closing: why } });
    }
    this.#depart({ id: entry.id, reason: why.reason, code: why.code });
  }

  /** Someone left, from whichever object: announced once, however often it is reported. */
  #depart({ id, reason, code }: Departure): void {
    const entry = this.#roster.remove(id);
    if (entry === undefined) return;
    // Its attachment held the newest copy of its address's frame bucket, perhaps.
    this.#addresses.saveFrames(entry.address, this.#roster.countAt(entry.address) > 0, Date.now());
    if (entry.shard !== 0 && this.#roster.countOn(entry.shard) === 0) this.#shards.forget(entry.shard);
    const online = this.#roster.size;
    this.#record({ kind: "left", user: toUser(entry), reason });
    log({ event: "close", room: this.#room, id, code, reason, online });
  }

  /**
   * After a leave or an alarm: a room with nobody in it and nothing to keep
   * gives all its storage back, and the alarm is left only while there is
   * work for it. Its address limits go too: with nobody in the room, there
   * is no one a flood of connections could disturb.
   */
  async #settle(): Promise<void> {
    if (this.#roster.size === 0 && this.#history.size === 0 && this.#store.exists && !this.#sanctions.active(Date.now())) {
      this.#store.forget();
      this.#addresses.forget();
      this.#sanctions.forget();
      await this.ctx.storage.deleteAll();
    }
    await this.#alarm.settle();
  }

  /**
   * When the alarm must run next, or null when it has nothing to do: ticks,
   * sweeps and the shards' census while anyone is connected, with trimming
   * riding along, so ticks keep their period; trimming alone while history
   * is too long in a room nobody is in.
   */
  #alarmDue(now: number): number | null {
    const period = alarmPeriodMs(this.#config);
    if (this.#roster.size > 0 && period !== null) return now + period;
    if (this.#history.size > this.#config.historyLimit) return now + TRIM_DELAY_MS;
    return null;
  }

  /**
   * Queues a presence event, after the messages already waiting: a message
   * stored before someone left goes out before their leave. Events nobody
   * else is there to hear are dropped.
   */
  #record(event: PresenceEvent): void {
    if (event.kind !== "renamed" && this.#roster.size <= (event.kind === "joined" ? 1 : 0)) return;
    this.#flush();
    this.#presence.add(event);
    this.#presenceTimer ??= setTimeout(() => {
      try {
        this.#flushPresence();
      } catch (error) {
        log({ event: "error", room: this.#room, handler: "presence", message: describe(error) });
      }
    }, presenceWindowMs(this.#config.presenceBatchMs, this.#roster.size));
  }

  /** Sends the pending presence events to everyone, as one frame each, and to each shard as one item. */
  #flushPresence(): void {
    if (this.#presenceTimer !== undefined) clearTimeout(this.#presenceTimer);
    this.#presenceTimer = undefined;
    const pending = this.#presence.take();
    if (pending.events.length === 0) return;
    const online = this.#roster.size;
    const at = Date.now();
    const named = online <= this.#config.announceLimit;
    const batch = new PresenceBatch(pending, online, at, named);
    for (const [ws, member] of this.#sockets.entries()) deliver(ws, batch.for(member.id)?.in(member.format) ?? null);
    const presence = { events: pending.events, known: Array.from(pending.known), online, at, named };
    for (const k of this.#roster.shards()) this.#shards.push(k, { presence });
  }

  #localPeer(ws: WebSocket, member: Member): Peer {
    // The roster is rebuilt from the attachment on wake, so a new name goes there too.
    const update = (change: Partial<Member>) => this.#sockets.save(ws, Object.assign(member, change));
    return {
      entry: this.#roster.get(member.id)!,
      deliver: (frame) => this.#sockets.send(ws, frame),
      keep: (addressFrames) => update({ addressFrames }),
      update,
    };
  }

  /**
   * Someone on a shard. Their attachment is the shard's: `keep` hands it
   * the bucket in the room's answer, and the rest of who they are is the
   * room's row, which the roster keeps.
   */
  #remotePeer(entry: Entry, keep: (addressFrames: Bucket) => void = () => {}): Peer {
    return { entry, deliver: (frame) => this.#shards.push(entry.shard, { frame, to: entry.id }), keep, update: () => {} };
  }

  #send(ws: WebSocket, frame: ServerFrame): void {
    this.#flush();
    this.#sockets.send(ws, frame);
  }

  #fail(ws: WebSocket, handler: string, error: unknown): void {
    log({ event: "error", room: this.#room, handler, message: describe(error) });
    this.#send(ws, errorFrame("internal", "the room could not handle that frame"));
  }
}

/** The frames that write to the room, which a mute refuses. */
const WRITES: ReadonlySet<string> = new Set(["message", "edit", "delete", "rename"] satisfies ClientFrame["type"][]);

/** What a message or change the room would not store is answered with. */
function refusalOf(published: Exclude<Published, { ok: true }>): ErrorFrame {
  if (published.code === "refused") return published.error;
  return errorFrame("id_conflict", `this id was already used for something else (#${published.seq}); send it again with a new id`);
}
