import { DurableObject } from "cloudflare:workers";
import { alarmPeriodMs, readConfig, type Config } from "./config";
import type { Env } from "./env";
import { isSilent } from "./heartbeat";
import { isWebSocketUpgrade, jsonError } from "./http";
import { parseJoin, roomSegment } from "./join";
import { describe, log } from "./log";
import { defaultName } from "./names";
import { errorFrame, Outgoing, parseClientFrame, type LeaveReason, type ServerFrame } from "./protocol";
import { Roster, toUser, type Member } from "./roster";
import { RoomStore } from "./store";

const OPEN = 1;
/** Close code for a socket the heartbeat sweep found silent. */
export const CLOSE_TIMEOUT = 4000;

/**
 * One chat room. It accepts sockets through the Hibernation API, so it sleeps
 * between frames; identity lives in attachments and counters in SQLite.
 */
export class Room extends DurableObject<Env> {
  readonly #config: Config;
  readonly #store: RoomStore;
  readonly #roster: Roster;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#config = readConfig(env);
    this.#store = new RoomStore(ctx.storage.sql);
    this.#roster = Roster.restore(ctx.getWebSockets());
    // Answered by the runtime itself, so heartbeats never wake the room.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair("ping", "pong"));
  }

  get #room(): string {
    return this.ctx.id.name ?? this.ctx.id.toString();
  }

  override async fetch(request: Request): Promise<Response> {
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
    const { room, name, format } = parsed.join;

    const number = this.#store.nextConnectionNumber();
    const now = Date.now();
    const member: Member = { id: String(number), name: name ?? defaultName(number), format, joinedAt: now, seenAt: now };
    const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
    this.ctx.acceptWebSocket(server);
    this.#roster.add(server, member);

    const users = this.#roster.users();
    this.#send(server, { type: "welcome", room, you: toUser(member), users, tickSeconds: this.#config.tickSeconds, at: now });
    this.#broadcast({ type: "join", user: toUser(member), online: users.length, at: now }, server);
    log({ event: "connect", room, id: member.id, format, online: users.length });

    await this.#scheduleAlarm();
    return new Response(null, { status: 101, webSocket: client });
  }

  override webSocketMessage(ws: WebSocket, data: string | ArrayBuffer): void {
    try {
      const member = this.#roster.get(ws);
      if (member === undefined) return;
      const now = Date.now();
      this.#roster.touch(ws, member, now);
      if (typeof data !== "string") {
        this.#send(ws, errorFrame("unsupported", "binary frames are not supported; send text"));
        return;
      }
      const parsed = parseClientFrame(data);
      if (!parsed.ok) {
        this.#send(ws, parsed.error);
        return;
      }
      const frame = parsed.frame;
      switch (frame.type) {
        case "message":
          this.#broadcast({ type: "message", user: toUser(member), text: frame.text, at: now });
          if (frame.id !== undefined) this.#send(ws, { type: "ack", id: frame.id });
          return;
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
    try {
      log({ event: "error", room: this.#room, handler: "webSocketError", message: describe(error) });
      await this.#leave(ws, "error", 1006);
    } catch (failure) {
      this.#fail(ws, "webSocketError", failure);
    }
  }

  /**
   * Ticks and sweeps. Alarms are at-least-once, so a retry only repeats a
   * tick with the current time and sweeps sockets that are already gone.
   */
  override async alarm(): Promise<void> {
    try {
      this.#sweep(Date.now());
      if (this.#roster.size > 0 && this.#config.tickSeconds > 0) {
        this.#broadcast({ type: "tick", now: Date.now(), online: this.#roster.size });
      }
    } catch (error) {
      log({ event: "error", room: this.#room, handler: "alarm", message: describe(error) });
    }
    // Outside the try: if scheduling fails, throwing makes the runtime retry.
    const period = alarmPeriodMs(this.#config);
    if (this.#roster.size > 0 && period !== null) await this.ctx.storage.setAlarm(Date.now() + period);
  }

  #sweep(now: number): void {
    const timeoutMs = this.#config.heartbeatTimeoutSeconds * 1000;
    const silent: WebSocket[] = [];
    for (const [ws, member] of this.#roster.entries()) {
      const lastPing = this.ctx.getWebSocketAutoResponseTimestamp(ws)?.getTime() ?? null;
      if (isSilent(lastPing, member.seenAt, now, timeoutMs)) silent.push(ws);
    }
    for (const ws of silent) {
      this.#announceLeave(ws, "timeout", CLOSE_TIMEOUT);
      try {
        ws.close(CLOSE_TIMEOUT, "heartbeat timeout");
      } catch {
        // Already closing.
      }
    }
  }

  async #leave(ws: WebSocket, reason: LeaveReason, code: number): Promise<void> {
    this.#announceLeave(ws, reason, code);
    // An empty room keeps no alarm, so it costs nothing until someone joins.
    if (this.#roster.size === 0) await this.ctx.storage.deleteAlarm();
  }

  #announceLeave(ws: WebSocket, reason: LeaveReason, code: number): void {
    const member = this.#roster.remove(ws);
    if (member === undefined) return;
    const online = this.#roster.size;
    this.#broadcast({ type: "leave", user: toUser(member), online, reason, at: Date.now() });
    log({ event: "close", room: this.#room, id: member.id, code, reason, online });
  }

  async #scheduleAlarm(): Promise<void> {
    const period = alarmPeriodMs(this.#config);
    if (period === null) return;
    // Also re-arms an alarm that a local code reload dropped.
    if ((await this.ctx.storage.getAlarm()) === null) await this.ctx.storage.setAlarm(Date.now() + period);
  }

  #broadcast(frame: ServerFrame, except?: WebSocket): void {
    const out = new Outgoing(frame);
    for (const [ws, member] of this.#roster.entries()) {
      if (ws !== except) this.#deliver(ws, out.in(member.format));
    }
  }

  #send(ws: WebSocket, frame: ServerFrame): void {
    const member = this.#roster.get(ws);
    this.#deliver(ws, new Outgoing(frame).in(member?.format ?? "json"));
  }

  /** A socket that fails to take a frame never stops the others from getting it. */
  #deliver(ws: WebSocket, data: string): void {
    if (ws.readyState !== OPEN) return;
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
