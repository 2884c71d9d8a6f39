import type { Env } from "../platform/env";
import { jsonError } from "../worker/http";
import { alarmPeriodMs } from "../platform/config";
import { describe, log } from "../platform/log";
import { closing, type LeaveReason } from "../protocol";
import { Inbox } from "./inbox";
import { PLACEMENT_HEADER, type Census, type Delivered, type Delivery, type Departure, type Forward, type Placement } from "./messages";
import { slowDown, SocketObject } from "../sockets/socket-object";
import type { Member, Received } from "../sockets/socket-set";

/** How long deliveries must pause before the shard stores how far it got. */
const SAVE_AFTER_MS = 1_000;

/**
 * One of a large room's shards: it holds up to `SHARD_SIZE` of the room's
 * sockets and relays to them what the room sends (see `inbox.ts`),
 * and passes their frames to the room, which handles them as its own. It
 * sweeps and ticks its own sockets; with none left it stops its alarm and
 * forgets its storage.
 */
export class Shard extends SocketObject {
  readonly #inbox: Inbox;
  /** Frames and departures on their way to the room, in order; one call at a time carries all that gathered. */
  #upstream: Array<Forward | Departure> = [];
  #sending = false;
  #saveTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#inbox = new Inbox(ctx.storage.sql);
  }

  /** The room's name and this shard's number, from the object's name, `<room>#<k>`. */
  get #nameParts(): { room: string; k: number } {
    const name = this.objectName;
    const at = name.lastIndexOf("#");
    return { room: name.slice(0, at), k: Number(name.slice(at + 1)) };
  }

  /** Accepts a socket the room placed here; the room has already queued its welcome. */
  protected override async join(request: Request): Promise<Response> {
    const header = request.headers.get(PLACEMENT_HEADER);
    if (header === null) return jsonError(400, "not_placed", "shards take only sockets their room placed on them");
    const { member } = JSON.parse(header) as Placement;
    const [socket, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
    this.ctx.acceptWebSocket(server);
    this.sockets.add(server, member);
    if (!this.#inbox.admit(server, member, this.sockets)) this.end(server, closing("tryAgain", "the room could not catch this connection up; reconnect"));
    await this.settle();
    return new Response(null, { status: 101, webSocket: socket });
  }

  /** A call from the room: what to relay to this shard's sockets. */
  deliver(delivery: Delivery): Delivered {
    this.trace("deliver");
    const delivered = this.#inbox.apply(delivery, this.sockets);
    if (this.#saveTimer !== undefined) clearTimeout(this.#saveTimer);
    this.#saveTimer = setTimeout(() => {
      this.#saveTimer = undefined;
      try {
        this.#inbox.save(this.sockets.size);
      } catch (error) {
        this.logError("save", error);
      }
    }, SAVE_AFTER_MS);
    return delivered;
  }

  /** Who this shard holds, for the room's census. */
  census(): Census {
    this.trace("census");
    return { members: this.sockets.ids(), delivered: this.#inbox.delivered };
  }

  /** Passes the frame to the room, which takes its address's share; a flood ends here. */
  protected override async received(ws: WebSocket, { member, own, lane, payload }: Received): Promise<void> {
    this.sockets.save(ws, member);
    if (!own.ok && own.flood) {
      this.sockets.send(ws, slowDown(own.retryAfterMs, lane));
      this.endFlood(ws);
    } else {
      this.#up({ id: member.id, data: payload, own, lane, ...(member.addressFrames && { addressFrames: member.addressFrames }) });
    }
    await this.settle();
  }

  /** The room announces the leave, once this shard tells it. */
  protected override left(member: Member, reason: LeaveReason, code: number): void {
    this.#up({ id: member.id, reason, code });
  }

  /** Ticks this shard's sockets; the room does the rest. */
  protected override async upkeep(now: number): Promise<void> {
    this.tick(now, this.#inbox.online);
  }

  protected override alarmDue(now: number): number | null {
    const period = alarmPeriodMs(this.config);
    return this.sockets.size > 0 && period !== null ? now + period : null;
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
    const { room, k } = this.#nameParts;
    try {
      const buckets = await this.env.ROOMS.getByName(room).fromShard(k, batch);
      batch.forEach((event, i) => {
        const ws = this.sockets.socketOf(event.id);
        const member = ws && this.sockets.get(ws);
        const bucket = buckets[i];
        if (ws !== undefined && member !== undefined && bucket) {
          member.addressFrames = bucket;
          this.sockets.save(ws, member);
        }
      });
    } catch (error) {
      log({ event: "error", room, handler: `shard ${k} to room`, message: describe(error) });
      for (const event of batch) {
        const ws = "data" in event ? this.sockets.socketOf(event.id) : undefined;
        if (ws !== undefined) this.failed(ws);
      }
    } finally {
      this.#sending = false;
    }
    void this.#sendUp();
  }

  /** Keeps the alarm while sockets are here; with none left, stops it and forgets where the stream was. */
  protected override async settle(): Promise<void> {
    await this.schedule.settle();
    if (this.sockets.size > 0) return;
    this.#inbox.forget();
    await this.ctx.storage.deleteAll();
  }
}
