import { alarmPeriodMs } from "../platform/config";
import { closing } from "../protocol";
import type { Broadcast } from "./broadcast";
import type { RoomParts } from "./parts";
import type { Expel } from "./peer";

/** Rows one alarm run deletes at most, so trimming never holds the room for long. */
const TRIM_BATCH = 1000;
/** How soon trimming runs, or its next batch, in a room nobody is connected to whose history outgrew its limit. */
const TRIM_DELAY_MS = 5_000;

/** What upkeep needs of the room besides its parts. */
export interface UpkeepLinks {
  broadcast: Broadcast;
  expel: Expel;
  /** Ticks the room's own sockets (see `SocketObject.tick`). */
  tick(now: number, online: number, first: () => void): void;
}

/**
 * The room's work in its alarm, after the sweep of silent sockets, and
 * what keeps the alarm: expiry, ticks, trims and the shards' census while
 * anyone is here; giving storage back once nobody is and nothing is left to
 * keep.
 */
export class Upkeep {
  constructor(
    private readonly parts: Pick<
      RoomParts,
      "config" | "storage" | "store" | "history" | "roster" | "shards" | "addresses" | "sanctions" | "direct" | "schedule"
    > &
      UpkeepLinks,
  ) {}

  /**
   * Alarms are at-least-once, so a retry only repeats a tick with the
   * current time, expels no one twice, trims what is already trimmed and
   * asks the shards again.
   */
  async run(now: number): Promise<void> {
    const { config, history, roster, shards, addresses, sanctions, broadcast } = this.parts;
    // A token is taken up to the allowed clock skew past its exp, and so is its socket.
    for (const entry of roster.expired(now - config.authClockSkewSeconds * 1000)) this.parts.expel(entry, closing("expired", "your token expired"));
    this.parts.tick(now, roster.size, () => {
      broadcast.flushPresence();
      broadcast.flush();
    });
    history.trim(config.historyLimit, TRIM_BATCH);
    addresses.prune(now, TRIM_BATCH);
    sanctions.prune(now);
    await Promise.all(roster.shards().map((k) => shards.census(k)));
  }

  /**
   * After a leave or an alarm: a room with nobody in it and nothing to keep
   * gives all its storage back, and the alarm is left only while there is
   * work for it. Its address limits go too: with nobody in the room, there
   * is no one a flood of connections could disturb.
   */
  async settle(): Promise<void> {
    const { storage, store, history, roster, addresses, sanctions, direct, schedule } = this.parts;
    if (roster.size === 0 && history.size === 0 && store.exists && !sanctions.active(Date.now()) && !direct.opened) {
      store.forget();
      addresses.forget();
      sanctions.forget();
      direct.forget();
      await storage.deleteAll();
    }
    await schedule.settle();
  }

  /**
   * When the alarm must run next, or null when it has nothing to do: ticks,
   * sweeps and the shards' census while anyone is connected, with trimming
   * riding along, so ticks keep their period; trimming alone while history
   * is too long in a room nobody is in.
   */
  due(now: number): number | null {
    const { config, history, roster } = this.parts;
    const period = alarmPeriodMs(config);
    if (roster.size > 0 && period !== null) return now + period;
    if (history.size > config.historyLimit) return now + TRIM_DELAY_MS;
    return null;
  }
}
