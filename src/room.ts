import { DurableObject } from "cloudflare:workers";
import { AddressBook, addressKey } from "./address";
import { alarmPeriodMs, readConfig, type Config } from "./config";
import type { Env } from "./env";
import { isSilent } from "./heartbeat";
import { History, replay, type NewMessage, type ReplayFrom } from "./history";
import { isWebSocketUpgrade, jsonError, refusalResponse } from "./http";
import { parseJoin, roomSegment } from "./join";
import { Buckets, exceedsBytes, fullBucket, take } from "./limits";
import { describe, log } from "./log";
import { defaultName } from "./names";
import { PresenceBatch, PresenceQueue, presenceWindowMs, type PresenceEvent } from "./presence";
import {
  errorFrame,
  Outgoing,
  parseClientFrame,
  type HistoryFrame,
  type LeaveReason,
  type MessageFrame,
  type MessagePage,
  type Refusal,
  type RoomInfo,
  type ServerFrame,
} from "./protocol";
import { Roster, senderOf, toUser, type Member } from "./roster";
import { RoomStore } from "./store";
import { requiresToken } from "./token";

const OPEN = 1;
/** Close code for a socket the heartbeat sweep found silent. */
export const CLOSE_TIMEOUT = 4000;
/** Close code (policy violation) for a socket that kept flooding. */
export const CLOSE_FLOOD = 1008;
/** Rows one alarm run deletes at most, so trimming never holds the room for long. */
export const TRIM_BATCH = 1000;
/** How soon trimming runs, or its next batch, in a room nobody is connected to whose history outgrew its limit. */
const TRIM_DELAY_MS = 5_000;
/** The user that messages posted over HTTP appear from. */
const HTTP_USER_ID = "http";

/**
 * What `post` and a socket's message both come to: the message's seq, and
 * whether it was a resend; or, for an id already used for another text, the
 * refusal and the seq that id holds.
 */
export type Published = { ok: true; seq: number; duplicate: boolean } | { ok: false; code: "id_conflict"; seq: number };

/** A message posted over HTTP, already checked by the Worker. */
export interface Post {
  name: string;
  text: string;
  /** Scopes `id` for deduplication. */
  sender: string;
  id?: string;
  /** The poster's address, which the room rate-limits. */
  address: string;
}

export type PostResult = Published | { ok: false; code: "rate_limited"; retryAfterMs: number };

/**
 * One chat room. It accepts sockets through the Hibernation API, so it sleeps
 * between frames; identity lives in attachments, messages and counters in
 * SQLite. The Worker calls the typed methods below for the HTTP API.
 */
export class Room extends DurableObject<Env> {
  readonly #config: Config;
  readonly #store: RoomStore;
  readonly #history: History;
  readonly #roster: Roster;
  readonly #addresses: AddressBook;
  readonly #presence = new PresenceQueue();
  /** Ends the presence batch window, while one is open. */
  #presenceTimer: ReturnType<typeof setTimeout> | undefined;
  /** Whether an alarm is known to be scheduled, so busy paths need not ask storage. */
  #alarmPending = false;
  readonly #postBuckets = new Buckets();
  /**
   * Stored messages whose broadcast waits for their commit, in seq order,
   * each with the ack its sender gets right after it. They go out before any
   * other frame and before anyone joins or leaves, and after the presence
   * news that came before them, so every socket still sees the room's
   * events, and the answers to its own frames, in the order they happened.
   */
  readonly #unsent: Array<{ frame: MessageFrame; ack?: { to: WebSocket; id: string } }> = [];

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#config = readConfig(env);
    const sql = ctx.storage.sql;
    this.#store = new RoomStore(sql, [History.SCHEMA, AddressBook.SCHEMA]);
    this.#history = new History(sql, this.#store);
    this.#addresses = new AddressBook(sql, this.#store, {
      connectsPerMinute: this.#config.connectsPerMinute,
      framesPer10s: this.#config.addressShare * this.#config.rateLimitPer10s,
    });
    this.#roster = Roster.restore(ctx.getWebSockets());
    for (const [, member] of this.#roster.entries()) {
      if (member.addressFrames !== undefined) this.#addresses.restoreFrames(member.address, member.addressFrames);
    }
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
    const attempt = this.#addresses.takeConnect(address, now);
    const refusal = attempt.ok ? this.#refusal(address) : connectingTooFast(attempt.retryAfterMs);
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
    const [socket, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
    this.ctx.acceptWebSocket(server);
    // Messages still waiting for their commit are in the history sent below,
    // so they go to everyone else first and never twice to this socket.
    this.#flush();
    this.#roster.add(server, member);

    // Welcome, history and the join go out in this one synchronous section:
    // every message after the history's lastSeq reaches this socket live, so
    // there is no gap and no duplicate at the seam; and every presence event
    // after this join reaches it in a presence frame, and none before.
    const online = this.#roster.size;
    const { users, more } = this.#roster.page(null, this.#config.presenceListLimit);
    const lastSeq = this.#history.lastSeq;
    const you = toUser(member);
    this.#send(server, { type: "welcome", room, you, users, more, online, tickSeconds: this.#config.tickSeconds, lastSeq, epoch: this.#store.epoch!, at: now });
    this.#send(server, this.#replay({ since, epoch }));
    this.#record({ kind: "joined", user: you });
    log({ event: "connect", room, id: member.id, format, online });

    // The first socket starts the ticks one period from now, whatever was scheduled for an empty room.
    await this.#armAlarm(online === 1);
    return new Response(null, { status: 101, webSocket: socket });
  }

  /**
   * Why the room would refuse another socket from `address` now, or null if
   * it would take it. Reads only, so that asking costs no write.
   */
  #refusal(address: string): Refusal | null {
    const perAddress = this.#config.maxConnectionsPerAddress;
    if (this.#roster.countAt(address) >= perAddress) {
      // A slot frees when one of them closes, or is swept once it has been silent this long.
      const retryAfterMs = (this.#config.heartbeatTimeoutSeconds || 60) * 1000;
      return { status: 429, code: "too_many_connections", message: `one address may hold at most ${perAddress} connections in a room`, retryAfterMs };
    }
    if (this.#roster.size >= this.#config.maxConnectionsPerRoom) {
      return { status: 503, code: "room_full", message: `this room holds at most ${this.#config.maxConnectionsPerRoom} connections` };
    }
    return null;
  }

  /**
   * What an upgrade from `address` would be refused with now, for a client
   * that cannot read the status of a refused upgrade (a browser) and asks
   * over HTTP instead; null if it would be let in. Takes nothing and writes
   * nothing.
   */
  admission(address: string): Refusal | null {
    this.#trace("admission");
    const key = addressKey(address);
    const wait = this.#addresses.connectWaitMs(key, Date.now());
    return wait > 0 ? connectingTooFast(wait) : this.#refusal(key);
  }

  #replay(from: ReplayFrom): HistoryFrame {
    return replay(this.#history, from, this.#config.historyOnJoin, this.#config.historyReplayLimit, this.#store.epoch!);
  }

  override async webSocketMessage(ws: WebSocket, data: string | ArrayBuffer): Promise<void> {
    this.#trace("webSocketMessage");
    try {
      const member = this.#roster.get(ws);
      if (member === undefined) return;
      const now = Date.now();
      member.seenAt = now;
      // Every frame counts against both limits, refused ones too.
      const own = take(member.bucket, this.#config.rateLimitPer10s, now);
      const shared = this.#addresses.takeFrame(member.address, now);
      member.addressFrames = shared.copy;
      this.#roster.save(ws, member);
      if (!own.ok || !shared.verdict.ok) {
        const retryAfterMs = Math.max(own.ok ? 0 : own.retryAfterMs, shared.verdict.ok ? 0 : shared.verdict.retryAfterMs);
        this.#send(ws, { ...errorFrame("rate_limited", "too many frames; slow down"), retryAfterMs });
        if (!own.ok && own.flood) this.#close(ws, "flood", CLOSE_FLOOD, "flooding");
        return;
      }
      const max = this.#config.maxFrameBytes;
      if (typeof data === "string" ? exceedsBytes(data, max) : data.byteLength > max) {
        this.#send(ws, errorFrame("too_large", `frames are at most ${max} bytes`));
        return;
      }
      if (typeof data !== "string") {
        this.#send(ws, errorFrame("unsupported", "binary frames are not supported; send text"));
        return;
      }
      const parsed = parseClientFrame(data, this.#config.maxMessageChars);
      if (!parsed.ok) {
        this.#send(ws, parsed.error);
        return;
      }
      const frame = parsed.frame;
      switch (frame.type) {
        case "message": {
          const published = this.#publish({ user: toUser(member), text: frame.text, at: now, sender: senderOf(member), id: frame.id }, ws);
          // A new message's ack goes out with it; these answers need no commit and go now.
          if (!published.ok) this.#send(ws, idConflict(published.seq));
          else if (published.duplicate && frame.id !== undefined) this.#send(ws, { type: "ack", id: frame.id, seq: published.seq });
          else await this.#broadcastWhenStored();
          await this.#armAlarm();
          return;
        }
        case "rename": {
          if (requiresToken(this.#room, this.env.ROOM_SECRET)) {
            this.#send(ws, errorFrame("rename_not_allowed", "names in this room are set by its tokens"));
            return;
          }
          const from = member.name;
          member.name = frame.name;
          this.#roster.save(ws, member);
          this.#record({ kind: "renamed", user: toUser(member), from });
          return;
        }
        case "who": {
          const page = this.#roster.page(frame.after ?? null, this.#config.presenceListLimit);
          this.#send(ws, { type: "users", ...page, online: this.#roster.size });
          this.#presence.known(member.id);
          return;
        }
        case "history":
          this.#send(ws, this.#replay({ since: frame.after, epoch: null }));
          return;
      }
    } catch (error) {
      this.#fail(ws, "webSocketMessage", error);
    }
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    this.#trace("webSocketClose");
    try {
      // The runtime does not answer a close on a hibernatable socket; without
      // this the client waits in CLOSING and ends with 1006.
      try {
        ws.close(sendableCloseCode(code), reason);
      } catch {
        // Already closed from our side.
      }
      await this.#leave(ws, "closed", code);
    } catch (error) {
      this.#fail(ws, "webSocketClose", error);
    }
  }

  override async webSocketError(ws: WebSocket, error: unknown): Promise<void> {
    this.#trace("webSocketError");
    try {
      log({ event: "error", room: this.#room, handler: "webSocketError", message: describe(error) });
      await this.#leave(ws, "error", 1006);
    } catch (failure) {
      this.#fail(ws, "webSocketError", failure);
    }
  }

  /**
   * Ticks, sweeps and trims. Alarms are at-least-once, so a retry only
   * repeats a tick with the current time, sweeps sockets that are already
   * gone and trims what is already trimmed.
   */
  override async alarm(): Promise<void> {
    this.#trace("alarm");
    this.#alarmPending = false;
    try {
      const now = Date.now();
      this.#sweep(now);
      if (this.#roster.size > 0 && this.#config.tickSeconds > 0) {
        this.#broadcast({ type: "tick", now, online: this.#roster.size });
      }
      this.#history.trim(this.#config.historyLimit, TRIM_BATCH);
      this.#addresses.prune(now, TRIM_BATCH);
    } catch (error) {
      log({ event: "error", room: this.#room, handler: "alarm", message: describe(error) });
    }
    // Outside the try: if scheduling fails, throwing makes the runtime retry.
    await this.#settle();
  }

  /** The room's state for `GET /api/rooms/<room>`. */
  info(): RoomInfo {
    this.#trace("info");
    const users = this.#roster.users();
    return { room: this.#room, online: users.length, users, lastSeq: this.#history.lastSeq };
  }

  /**
   * A page of messages for `GET /api/rooms/<room>/messages`: the latest
   * `limit`, or the first `limit` after `since`.
   */
  messages(since: number | null, limit: number): MessagePage {
    this.#trace("messages");
    const { oldestSeq, lastSeq } = this.#history;
    const messages = since === null ? this.#history.latest(limit) : this.#history.after(since, limit);
    return { messages, oldestSeq, lastSeq, gap: since !== null && this.#history.trimmedAfter(since), epoch: this.#store.epoch };
  }

  /**
   * Stores and broadcasts a message posted over HTTP, exactly as if a socket
   * had sent it, unless its address is over the rate limit.
   */
  async post(post: Post): Promise<PostResult> {
    this.#trace("post");
    const now = Date.now();
    const verdict = this.#postBuckets.take(addressKey(post.address), this.#config.rateLimitPer10s, now);
    if (!verdict.ok) return { ok: false, code: "rate_limited", retryAfterMs: verdict.retryAfterMs };
    const published = this.#publish({ user: { id: HTTP_USER_ID, name: post.name }, text: post.text, at: now, sender: post.sender, id: post.id });
    await this.#broadcastWhenStored();
    await this.#armAlarm();
    return published;
  }

  /**
   * Takes the seq and writes the message in one synchronous step, so nothing
   * can interleave, and queues its broadcast; if the write throws, nothing is
   * queued. A resend of a kept message is answered with its seq and not
   * stored again; the same id with another text is refused, since it cannot
   * be a resend and acknowledging it would lose that text.
   */
  #publish(message: NewMessage, ackTo?: WebSocket): Published {
    const { id } = message;
    if (id !== undefined) {
      const kept = this.#history.stored(message.sender, id);
      if (kept?.text === message.text) return { ok: true, seq: kept.seq, duplicate: true };
      if (kept !== null) return { ok: false, code: "id_conflict", seq: kept.seq };
    }
    const frame = this.#history.append(message, this.#config.historyLimit);
    this.#unsent.push(ackTo !== undefined && id !== undefined ? { frame, ack: { to: ackTo, id } } : { frame });
    return { ok: true, seq: frame.seq, duplicate: false };
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
    if (this.#unsent.length === 0) return;
    this.#flushPresence();
    while (this.#unsent.length > 0) {
      const { frame, ack } = this.#unsent.shift()!;
      this.#fanOut(frame);
      if (ack !== undefined) this.#sendNow(ack.to, { type: "ack", id: ack.id, seq: frame.seq });
    }
  }

  #sweep(now: number): void {
    const timeoutMs = this.#config.heartbeatTimeoutSeconds * 1000;
    const silent: WebSocket[] = [];
    for (const [ws, member] of this.#roster.entries()) {
      const lastPingAt = this.ctx.getWebSocketAutoResponseTimestamp(ws)?.getTime() ?? null;
      if (isSilent({ joinedAt: member.joinedAt, seenAt: member.seenAt, lastPingAt }, now, timeoutMs)) silent.push(ws);
    }
    for (const ws of silent) this.#close(ws, "timeout", CLOSE_TIMEOUT, "heartbeat timeout");
  }

  /** Closes a socket from the room's side, announcing the leave now: no close event may follow. */
  #close(ws: WebSocket, reason: LeaveReason, code: number, why: string): void {
    this.#announceLeave(ws, reason, code);
    try {
      ws.close(code, why);
    } catch {
      // Already closing.
    }
  }

  async #leave(ws: WebSocket, reason: LeaveReason, code: number): Promise<void> {
    this.#announceLeave(ws, reason, code);
    await this.#settle();
  }

  #announceLeave(ws: WebSocket, reason: LeaveReason, code: number): void {
    const member = this.#roster.remove(ws);
    if (member === undefined) return;
    const now = Date.now();
    // Its attachment held the newest copy of its address's frame bucket, perhaps.
    this.#addresses.saveFrames(member.address, this.#roster.countAt(member.address) > 0, now);
    const online = this.#roster.size;
    this.#record({ kind: "left", user: toUser(member), reason });
    log({ event: "close", room: this.#room, id: member.id, code, reason, online });
  }

  /**
   * After a leave or an alarm: a room with nobody in it and nothing to keep
   * gives all its storage back, and the alarm is left only while there is
   * work for it. Its address limits go too: with nobody in the room, there
   * is no one a flood of connections could disturb.
   */
  async #settle(): Promise<void> {
    if (this.#roster.size === 0 && this.#history.size === 0 && this.#store.exists) {
      this.#store.forget();
      this.#addresses.forget();
      await this.ctx.storage.deleteAll();
    }
    if (this.#alarmDue(Date.now()) !== null) return this.#armAlarm();
    await this.ctx.storage.deleteAlarm();
    this.#alarmPending = false;
  }

  /**
   * When the alarm must run next, or null when it has nothing to do: ticks
   * and sweeps while anyone is connected, with trimming riding along, so
   * ticks keep their period; trimming alone while history is too long in a
   * room nobody is in.
   */
  #alarmDue(now: number): number | null {
    const period = alarmPeriodMs(this.#config);
    if (this.#roster.size > 0 && period !== null) return now + period;
    if (this.#history.size > this.#config.historyLimit) return now + TRIM_DELAY_MS;
    return null;
  }

  /**
   * Schedules the alarm if it has work and none is pending, or anew when
   * `reschedule`. A fresh instance asks storage once, which also re-arms an
   * alarm that a local code reload dropped.
   */
  async #armAlarm(reschedule = false): Promise<void> {
    if (this.#alarmPending && !reschedule) return;
    const due = this.#alarmDue(Date.now());
    if (due === null) return;
    if (reschedule || (await this.ctx.storage.getAlarm()) === null) await this.ctx.storage.setAlarm(due);
    this.#alarmPending = true;
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

  /** Sends the pending presence events to everyone, as one frame each. */
  #flushPresence(): void {
    if (this.#presenceTimer !== undefined) clearTimeout(this.#presenceTimer);
    this.#presenceTimer = undefined;
    const pending = this.#presence.take();
    if (pending.events.length === 0) return;
    const online = this.#roster.size;
    const batch = new PresenceBatch(pending, online, Date.now(), online <= this.#config.announceLimit);
    for (const [ws, member] of this.#roster.entries()) this.#deliver(ws, batch.for(member.id)?.in(member.format) ?? null);
  }

  /** Sends a frame to everyone, after everything that happened before it. */
  #broadcast(frame: ServerFrame): void {
    this.#flushPresence();
    this.#flush();
    this.#fanOut(frame);
  }

  #fanOut(frame: ServerFrame): void {
    const out = new Outgoing(frame);
    for (const [ws, member] of this.#roster.entries()) this.#deliver(ws, out.in(member.format));
  }

  #send(ws: WebSocket, frame: ServerFrame): void {
    this.#flush();
    this.#sendNow(ws, frame);
  }

  /** Sends one frame without first sending the queued messages. */
  #sendNow(ws: WebSocket, frame: ServerFrame): void {
    const member = this.#roster.get(ws);
    this.#deliver(ws, new Outgoing(frame).in(member?.format ?? "json"));
  }

  /** A socket that fails to take a frame never stops the others from getting it. */
  #deliver(ws: WebSocket, data: string | null): void {
    if (data === null || ws.readyState !== OPEN) return;
    try {
      ws.send(data);
    } catch {
      // Its close event will announce the leave.
    }
  }

  #fail(ws: WebSocket, handler: string, error: unknown): void {
    log({ event: "error", room: this.#room, handler, message: describe(error) });
    this.#send(ws, errorFrame("internal", "the room could not handle that frame"));
  }
}

function connectingTooFast(retryAfterMs: number): Refusal {
  return { status: 429, code: "rate_limited", message: "too many connection attempts from this address; try again later", retryAfterMs };
}

function idConflict(seq: number): ServerFrame {
  return errorFrame("id_conflict", `this id was already used for another message (#${seq}); send a new message with a new id`);
}

/** 1005, 1006 and 1015 only describe a close and may not be sent in one. */
function sendableCloseCode(code: number): number {
  return code === 1005 || code === 1006 || code === 1015 ? 1000 : code;
}
