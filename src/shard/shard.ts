import { DurableObject } from "cloudflare:workers";
import { Alarm } from "../sockets/alarm";
import { alarmPeriodMs, readConfig, type Config } from "../platform/config";
import type { Env } from "../platform/env";
import { jsonError } from "../worker/http";
import { describe, log } from "../platform/log";
import { closing, errorFrame, type ClosingFrame, type LeaveReason } from "../protocol";
import { Inbox } from "./inbox";
import { PLACEMENT_HEADER, type Census, type Delivered, type Delivery, type Departure, type Forward, type Placement } from "./messages";
import { SocketSet } from "../sockets/socket-set";

/** How long deliveries must pause before the shard stores how far it got. */
const SAVE_AFTER_MS = 1_000;

/**
 * One of a large room's shards: it holds up to `SHARD_SIZE` of the room's
 * sockets and relays to them what the room sends (see `inbox.ts`),
 * and passes their frames to the room, which handles them as its own. It
 * sweeps and ticks its own sockets; with none left it stops its alarm and
 * forgets its storage.
 */
export class Shard extends DurableObject<Env> {
  readonly #config: Config;
  readonly #sockets: SocketSet;
  readonly #inbox: Inbox;
  readonly #alarm: Alarm;
  /** Frames and departures on their way to the room, in order; one call at a time carries all that gathered. */
  #upstream: Array<Forward | Departure> = [];
  #sending = false;
  #saveTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#config = readConfig(env);
    this.#sockets = SocketSet.restore(ctx.getWebSockets());
    this.#inbox = new Inbox(ctx.storage.sql);
    const period = alarmPeriodMs(this.#config);
    this.#alarm = new Alarm(ctx.storage, (now) => (this.#sockets.size > 0 && period !== null ? now + period : null));
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair("ping", "pong"));
  }

  /** `<room>#<k>`, as the room named it. */
  get #name(): string {
    return this.ctx.id.name ?? "";
  }

  /** The room's name and this shard's number, from the object's name. */
  get #identity(): { room: string; k: number } {
    const name = this.#name;
    const at = name.lastIndexOf("#");
    return { room: name.slice(0, at), k: Number(name.slice(at + 1)) };
  }

  #trace(handler: string): void {
    if (this.#config.traceWakeups) log({ event: "wake", room: this.#name, handler });
  }

  /** Accepts a socket the room placed here; the room has already queued its welcome. */
  override async fetch(request: Request): Promise<Response> {
    this.#trace("fetch");
    try {
      const header = request.headers.get(PLACEMENT_HEADER);
      if (header === null) return jsonError(400, "not_placed", "shards take only sockets their room placed on them");
      const { member } = JSON.parse(header) as Placement;
      const [socket, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
      this.ctx.acceptWebSocket(server);
      this.#sockets.add(server, member);
      if (!this.#inbox.admit(server, member)) this.#end(server, closing("tryAgain", "the room could not catch this connection up; reconnect"), "error");
      await this.#settle();
      return new Response(null, { status: 101, webSocket: socket });
    } catch (error) {
      log({ event: "error", room: this.#name, handler: "fetch", message: describe(error) });
      return jsonError(500, "internal", "the room could not accept the connection");
    }
  }

  /** A call from the room: what to relay to this shard's sockets. */
  deliver(delivery: Delivery): Delivered {
    this.#trace("deliver");
    const delivered = this.#inbox.apply(delivery, this.#sockets);
    if (this.#saveTimer !== undefined) clearTimeout(this.#saveTimer);
    this.#saveTimer = setTimeout(() => {
      this.#saveTimer = undefined;
      try {
        this.#inbox.save(this.#sockets.size);
      } catch (error) {
        log({ event: "error", room: this.#name, handler: "save", message: describe(error) });
      }
    }, SAVE_AFTER_MS);
    return delivered;
  }

  /** Who this shard holds, for the room's census. */
  census(): Census {
    this.#trace("census");
    return { members: this.#sockets.ids(), delivered: this.#inbox.delivered };
  }

  override async webSocketMessage(ws: WebSocket, data: string | ArrayBuffer): Promise<void> {
    this.#trace("webSocketMessage");
    try {
      const frame = this.#sockets.receive(ws, data, this.#config.rateLimitPer10s, Date.now());
      if (frame === undefined) return;
      const { member, own, payload } = frame;
      this.#sockets.save(ws, member);
      if (!own.ok && own.flood) {
        this.#sockets.send(ws, { ...errorFrame("rate_limited", "too many frames; slow down"), retryAfterMs: own.retryAfterMs });
        this.#end(ws, closing("flood", "you sent frames too fast for too long"), "flood");
      } else {
        this.#up({ id: member.id, data: payload, own, ...(member.addressFrames && { addressFrames: member.addressFrames }) });
      }
      await this.#settle();
    } catch (error) {
      log({ event: "error", room: this.#name, handler: "webSocketMessage", message: describe(error) });
      this.#sockets.send(ws, errorFrame("internal", "the room could not handle that frame"));
    }
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    this.#trace("webSocketClose");
    this.#close(ws, "closed", code, reason);
    await this.#settle();
  }

  override async webSocketError(ws: WebSocket, error: unknown): Promise<void> {
    this.#trace("webSocketError");
    log({ event: "error", room: this.#name, handler: "webSocketError", message: describe(error) });
    this.#close(ws, "error", 1006, "socket error");
    await this.#settle();
  }

  /** Sweeps and ticks this shard's sockets; the room does the rest. */
  override async alarm(): Promise<void> {
    this.#trace("alarm");
    this.#alarm.fired();
    try {
      const now = Date.now();
      const timeout = this.#config.heartbeatTimeoutSeconds;
      for (const ws of this.#sockets.silent(now, timeout * 1000, this.ctx)) this.#end(ws, closing("timeout", `nothing heard from this connection for ${timeout} s`), "timeout");
      if (this.#sockets.size > 0 && this.#config.tickSeconds > 0) this.#sockets.fanOut({ type: "tick", now, online: this.#inbox.online });
    } catch (error) {
      log({ event: "error", room: this.#name, handler: "alarm", message: describe(error) });
    }
    await this.#settle();
  }

  /** Closes a socket, or answers its close, and tells the room it left. */
  /** Closes a socket for a reason of the shard's, which its last frame gives, and tells the room it left. */
  #end(ws: WebSocket, why: ClosingFrame, reason: LeaveReason): void {
    const member = this.#sockets.end(ws, why);
    if (member !== undefined) this.#up({ id: member.id, reason, code: why.code });
  }

  #close(ws: WebSocket, reason: LeaveReason, code: number, why: string): void {
    const member = this.#sockets.close(ws, code, why);
    if (member !== undefined) this.#up({ id: member.id, reason, code });
  }

  #up(event: Forward | Departure): void {
    this.#upstream.push(event);
    void this.#sendUp();
  }

  /**
   * Sends what gathered to the room, in order. A call that fails is not
   * repeated, since the room may have stored its messages: each sender is
   * told its frame failed, as the room tells its own sockets, and resends
   * with its message's id; a departure the room missed is found by its census.
   */
  async #sendUp(): Promise<void> {
    if (this.#sending || this.#upstream.length === 0) return;
    this.#sending = true;
    const batch = this.#upstream;
    this.#upstream = [];
    const { room, k } = this.#identity;
    try {
      const buckets = await this.env.ROOMS.getByName(room).fromShard(k, batch);
      batch.forEach((event, i) => {
        const ws = this.#sockets.socketOf(event.id);
        const member = ws && this.#sockets.get(ws);
        const bucket = buckets[i];
        if (ws !== undefined && member !== undefined && bucket) {
          member.addressFrames = bucket;
          this.#sockets.save(ws, member);
        }
      });
    } catch (error) {
      log({ event: "error", room, handler: `shard ${k} to room`, message: describe(error) });
      for (const event of batch) {
        const ws = "data" in event ? this.#sockets.socketOf(event.id) : undefined;
        if (ws !== undefined) this.#sockets.send(ws, errorFrame("internal", "the room could not handle that frame"));
      }
    } finally {
      this.#sending = false;
    }
    void this.#sendUp();
  }

  /** Keeps the alarm while sockets are here; with none left, stops it and forgets where the stream was. */
  async #settle(): Promise<void> {
    await this.#alarm.settle();
    if (this.#sockets.size > 0) return;
    this.#inbox.forget();
    await this.ctx.storage.deleteAll();
  }
}
