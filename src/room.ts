import { DurableObject } from "cloudflare:workers";
import { alarmPeriodMs, readConfig, type Config } from "./config";
import type { Env } from "./env";
import { isSilent } from "./heartbeat";
import { History, replay, type NewMessage } from "./history";
import { isWebSocketUpgrade, jsonError } from "./http";
import { parseJoin, roomSegment } from "./join";
import { Buckets, exceedsBytes, fullBucket, take } from "./limits";
import { describe, log } from "./log";
import { defaultName } from "./names";
import {
  errorFrame,
  Outgoing,
  parseClientFrame,
  type LeaveReason,
  type MessageFrame,
  type MessagePage,
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
/** How soon trimming runs, or its next batch, when history outgrew its limit and no tick is due sooner. */
const TRIM_DELAY_MS = 5_000;
/** The user that messages posted over HTTP appear from. */
const HTTP_USER_ID = "http";

/** What `post` and a socket's message both come to: the message's seq, and whether it was a resend. */
export interface Published {
  seq: number;
  duplicate: boolean;
}

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

export type PostResult = ({ ok: true } & Published) | { ok: false; retryAfterMs: number };

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
  /** Whether an alarm is known to be scheduled, so busy paths need not ask storage. */
  #alarmPending = false;
  readonly #postBuckets = new Buckets();
  /**
   * Stored messages whose broadcast waits for their commit, in seq order.
   * They go out before any other frame and before anyone joins, so every
   * socket still sees the room's events in the order they happened.
   */
  readonly #unsent: MessageFrame[] = [];

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#config = readConfig(env);
    this.#store = new RoomStore(ctx.storage.sql);
    this.#history = new History(ctx.storage.sql);
    this.#roster = Roster.restore(ctx.getWebSockets());
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
    const { room, name, format, since, client } = parsed.join;
    if (this.#roster.size >= this.#config.maxConnectionsPerRoom) {
      return jsonError(503, "room_full", `this room holds at most ${this.#config.maxConnectionsPerRoom} connections`);
    }

    const number = this.#store.nextConnectionNumber();
    const now = Date.now();
    const member: Member = {
      id: String(number),
      name: name ?? defaultName(number),
      format,
      joinedAt: now,
      seenAt: now,
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
    // there is no gap and no duplicate at the seam.
    const users = this.#roster.users();
    const lastSeq = this.#history.lastSeq;
    this.#send(server, { type: "welcome", room, you: toUser(member), users, tickSeconds: this.#config.tickSeconds, lastSeq, at: now });
    this.#send(server, replay(this.#history, since, this.#config.historyOnJoin));
    this.#broadcast({ type: "join", user: toUser(member), online: users.length, at: now }, server);
    log({ event: "connect", room, id: member.id, format, online: users.length });

    await this.#armAlarm();
    return new Response(null, { status: 101, webSocket: socket });
  }

  override async webSocketMessage(ws: WebSocket, data: string | ArrayBuffer): Promise<void> {
    this.#trace("webSocketMessage");
    try {
      const member = this.#roster.get(ws);
      if (member === undefined) return;
      const now = Date.now();
      member.seenAt = now;
      // Every frame counts against the limit, refused ones too.
      const verdict = take(member.bucket, this.#config.rateLimitPer10s, now);
      this.#roster.save(ws, member);
      if (!verdict.ok) {
        this.#send(ws, { ...errorFrame("rate_limited", "too many frames; slow down"), retryAfterMs: verdict.retryAfterMs });
        if (verdict.flood) this.#close(ws, "flood", CLOSE_FLOOD, "flooding");
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
          const published = this.#publish({ user: toUser(member), text: frame.text, at: now, sender: senderOf(member), id: frame.id });
          await this.#broadcastWhenStored();
          if (frame.id !== undefined) this.#send(ws, { type: "ack", id: frame.id, seq: published.seq });
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
          this.#broadcast({ type: "rename", user: toUser(member), from, at: now });
          return;
        }
        case "who": {
          const users = this.#roster.users();
          this.#send(ws, { type: "users", users, online: users.length });
          return;
        }
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
      this.#sweep(Date.now());
      if (this.#roster.size > 0 && this.#config.tickSeconds > 0) {
        this.#broadcast({ type: "tick", now: Date.now(), online: this.#roster.size });
      }
      this.#history.trim(this.#config.historyLimit, TRIM_BATCH);
    } catch (error) {
      log({ event: "error", room: this.#room, handler: "alarm", message: describe(error) });
    }
    // Outside the try: if scheduling fails, throwing makes the runtime retry.
    const due = this.#alarmDue(Date.now());
    if (due !== null) await this.ctx.storage.setAlarm(due);
    this.#alarmPending = due !== null;
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
    return { messages, oldestSeq, lastSeq, gap: since !== null && this.#history.trimmedAfter(since) };
  }

  /**
   * Stores and broadcasts a message posted over HTTP, exactly as if a socket
   * had sent it, unless its address is over the rate limit.
   */
  async post(post: Post): Promise<PostResult> {
    this.#trace("post");
    const now = Date.now();
    const verdict = this.#postBuckets.take(post.address, this.#config.rateLimitPer10s, now);
    if (!verdict.ok) return { ok: false, retryAfterMs: verdict.retryAfterMs };
    const published = this.#publish({ user: { id: HTTP_USER_ID, name: post.name }, text: post.text, at: now, sender: post.sender, id: post.id });
    await this.#broadcastWhenStored();
    await this.#armAlarm();
    return { ok: true, ...published };
  }

  /**
   * Takes the seq and writes the message in one synchronous step, so nothing
   * can interleave, and queues its broadcast; if the write throws, nothing is
   * queued. A resend of a kept message is answered with its seq and not
   * stored again.
   */
  #publish(message: NewMessage): Published {
    if (message.id !== undefined) {
      const seq = this.#history.seqOf(message.sender, message.id);
      if (seq !== null) return { seq, duplicate: true };
    }
    const frame = this.#history.append(message);
    this.#unsent.push(frame);
    return { seq: frame.seq, duplicate: false };
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

  /** Sends the queued messages. Frames sent before their commit still wait for it at the output gate. */
  #flush(): void {
    while (this.#unsent.length > 0) this.#fanOut(this.#unsent.shift()!);
  }

  #sweep(now: number): void {
    const timeoutMs = this.#config.heartbeatTimeoutSeconds * 1000;
    const silent: WebSocket[] = [];
    for (const [ws, member] of this.#roster.entries()) {
      const lastPing = this.ctx.getWebSocketAutoResponseTimestamp(ws)?.getTime() ?? null;
      if (isSilent(lastPing, member.seenAt, now, timeoutMs)) silent.push(ws);
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
    // An empty room with nothing to trim keeps no alarm, so it costs nothing.
    if (this.#alarmDue(Date.now()) === null) {
      await this.ctx.storage.deleteAlarm();
      this.#alarmPending = false;
    }
  }

  #announceLeave(ws: WebSocket, reason: LeaveReason, code: number): void {
    const member = this.#roster.remove(ws);
    if (member === undefined) return;
    const online = this.#roster.size;
    this.#broadcast({ type: "leave", user: toUser(member), online, reason, at: Date.now() });
    log({ event: "close", room: this.#room, id: member.id, code, reason, online });
  }

  /**
   * When the alarm must run next, or null when it has nothing to do: ticks
   * and sweeps while anyone is connected, trimming while history is too long.
   */
  #alarmDue(now: number): number | null {
    const due: number[] = [];
    const period = alarmPeriodMs(this.#config);
    if (this.#roster.size > 0 && period !== null) due.push(now + period);
    if (this.#history.size > this.#config.historyLimit) due.push(now + TRIM_DELAY_MS);
    return due.length === 0 ? null : Math.min(...due);
  }

  /**
   * Schedules the alarm if it has work and none is pending. A fresh instance
   * asks storage once, which also re-arms an alarm that a local code reload
   * dropped.
   */
  async #armAlarm(): Promise<void> {
    if (this.#alarmPending) return;
    const due = this.#alarmDue(Date.now());
    if (due === null) return;
    if ((await this.ctx.storage.getAlarm()) === null) await this.ctx.storage.setAlarm(due);
    this.#alarmPending = true;
  }

  #broadcast(frame: ServerFrame, except?: WebSocket): void {
    this.#flush();
    this.#fanOut(frame, except);
  }

  #fanOut(frame: ServerFrame, except?: WebSocket): void {
    const out = new Outgoing(frame);
    for (const [ws, member] of this.#roster.entries()) {
      if (ws !== except) this.#deliver(ws, out.in(member.format));
    }
  }

  #send(ws: WebSocket, frame: ServerFrame): void {
    this.#flush();
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

/** 1005, 1006 and 1015 only describe a close and may not be sent in one. */
function sendableCloseCode(code: number): number {
  return code === 1005 || code === 1006 || code === 1015 ? 1000 : code;
}
