import { DurableObject } from "cloudflare:workers";
import { Alarm } from "./alarm";
import { readConfig, type Config } from "../platform/config";
import type { Env } from "../platform/env";
import { jsonError } from "../worker/http";
import { describe, log } from "../platform/log";
import { closing, errorFrame, type ClosingFrame, type ErrorFrame, type Lane, type LeaveReason, type ServerFrame } from "../protocol";
import { SocketSet, type Member, type Received } from "./socket-set";

/** The answer to a frame over its sender's limits, and when to send again; `lane` names the budget when it was one of those. */
export function slowDown(retryAfterMs: number, lane: Lane | null = null): ErrorFrame {
  return { ...errorFrame("rate_limited", `too many ${lane === null ? "frames" : lane === "typing" ? "typing frames" : "reactions"}; slow down`), retryAfterMs };
}

/**
 * A Durable Object that holds sockets through the Hibernation API: a room,
 * or one of its shards. What both must do alike is done here: rebuild the
 * sockets from their attachments on every wake, answer heartbeats without
 * waking, reciprocate every close, sweep silent sockets, and catch whatever
 * a handler throws, log it and tell the socket, since the runtime would
 * only log it and an uncaught error can reset the instance. A subclass says
 * what a connection, a frame, a leave and the alarm's work are to it.
 */
export abstract class SocketObject extends DurableObject<Env> {
  protected readonly config: Config;
  protected readonly sockets: SocketSet;
  /** The object's one alarm, due when `alarmDue` says. */
  protected readonly schedule: Alarm;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.config = readConfig(env);
    this.sockets = SocketSet.restore(ctx.getWebSockets(), this.config, () => this.objectName);
    this.schedule = new Alarm(ctx.storage, (now) => this.alarmDue(now));
    // Answered by the runtime itself, so heartbeats never wake the object.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair("ping", "pong"));
  }

  /** Accepts a socket with `ctx.acceptWebSocket`, never a standard accept, which would keep the object from hibernating; or refuses. */
  protected abstract join(request: Request): Promise<Response>;

  /** Handles a frame from a socket here, once the socket's own limit has been taken for it. */
  protected abstract received(ws: WebSocket, frame: Received): Promise<void>;

  /** A socket here closed or was closed; called once per socket, for its leave to be announced. */
  protected abstract left(member: Member, reason: LeaveReason, code: number): void;

  /** The alarm's work, after silent sockets were swept. Alarms are at-least-once: it must bear repeating. */
  protected abstract upkeep(now: number): Promise<void>;

  /** When the alarm must run next, or null when it has nothing to do. */
  protected abstract alarmDue(now: number): number | null;

  /** After a leave or an alarm: keeps the alarm only while there is work for it, and gives storage back when nothing is left to keep. */
  protected abstract settle(): Promise<void>;

  /** What log lines name this object by: the name it was got by. */
  protected get objectName(): string {
    return this.ctx.id.name ?? this.ctx.id.toString();
  }

  /** Says which handler woke the object, when `TRACE_WAKEUPS` asks for it. */
  protected trace(handler: string): void {
    if (this.config.traceWakeups) log({ event: "wake", room: this.objectName, handler });
  }

  protected logError(handler: string, error: unknown): void {
    log({ event: "error", room: this.objectName, handler, message: describe(error) });
  }

  /** Sends a frame of the object's own to one socket; a subclass may first send what must go ahead of it. */
  protected send(ws: WebSocket, frame: ServerFrame): void {
    this.sockets.send(ws, frame);
  }

  override async fetch(request: Request): Promise<Response> {
    this.trace("fetch");
    try {
      return await this.join(request);
    } catch (error) {
      this.logError("fetch", error);
      return jsonError(500, "internal", "the room could not accept the connection");
    }
  }

  override async webSocketMessage(ws: WebSocket, data: string | ArrayBuffer): Promise<void> {
    this.trace("webSocketMessage");
    try {
      const frame = this.sockets.receive(ws, data, this.config, Date.now());
      if (frame !== undefined) await this.received(ws, frame);
    } catch (error) {
      this.#fail(ws, "webSocketMessage", error);
    }
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    this.trace("webSocketClose");
    try {
      this.close(ws, "closed", code, reason);
      await this.settle();
    } catch (error) {
      this.#fail(ws, "webSocketClose", error);
    }
  }

  override async webSocketError(ws: WebSocket, error: unknown): Promise<void> {
    this.trace("webSocketError");
    try {
      this.logError("webSocketError", error);
      this.close(ws, "error", 1006, "socket error");
      await this.settle();
    } catch (failure) {
      this.#fail(ws, "webSocketError", failure);
    }
  }

  override async alarm(): Promise<void> {
    this.trace("alarm");
    this.schedule.fired();
    try {
      const now = Date.now();
      const timeout = this.config.heartbeatTimeoutSeconds;
      for (const ws of this.sockets.silent(now, timeout * 1000, this.ctx))
        this.end(ws, closing("timeout", `nothing heard from this connection for ${timeout} s`));
      await this.upkeep(now);
    } catch (error) {
      this.logError("alarm", error);
    }
    // Outside the try: if scheduling fails, throwing makes the runtime retry.
    await this.settle();
  }

  /**
   * Answers a client's close, or closes a failed socket, and has the leave
   * announced now: no close event may follow. `SocketSet.close` sends the
   * close the runtime would not.
   */
  protected close(ws: WebSocket, reason: LeaveReason, code: number, why: string): void {
    const member = this.sockets.close(ws, code, why);
    if (member !== undefined) this.left(member, reason, code);
  }

  /** Closes a socket for a reason of the object's, which its last frame gives, and has the leave announced now. */
  protected end(ws: WebSocket, why: ClosingFrame): void {
    const member = this.sockets.end(ws, why);
    if (member !== undefined) this.left(member, why.reason === "tryAgain" ? "error" : why.reason, why.code);
  }

  /** Closes a socket that kept sending faster than its limit allows. */
  protected endFlood(ws: WebSocket): void {
    this.end(ws, closing("flood", "you sent frames too fast for too long"));
  }

  /** Tells a socket that its frame failed: its client resends what it needs to, a message with the same id. */
  protected failed(ws: WebSocket): void {
    this.send(ws, errorFrame("internal", "the room could not handle that frame"));
  }

  /** Ticks every socket here, if ticks are on; `first` sends what must reach them ahead of the tick, and runs only if it goes. */
  protected tick(now: number, online: number, first?: () => void): void {
    if (!(this.sockets.size > 0 && this.config.tickSeconds > 0)) return;
    first?.();
    this.sockets.fanOut({ type: "tick", now, online });
  }

  #fail(ws: WebSocket, handler: string, error: unknown): void {
    this.logError(handler, error);
    this.failed(ws);
  }
}
