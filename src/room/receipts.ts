import { describe, log } from "../platform/log";
import type { ReceiptsFrame } from "../protocol";
import type { Broadcast } from "./broadcast";
import type { RoomParts } from "./parts";
import { presenceWindowMs } from "./presence";
import type { Reads } from "./reads";
import { accountOf, toUser, type Roster } from "./roster";

/**
 * The most people a room may have online for its members to see how far
 * each other has read. Up to here a receipts frame names at most this many
 * connections and costs each member one frame per batch window; beyond it,
 * "read by" means little and a frame to everyone for every read would be
 * the room's busiest traffic, so nobody is told.
 */
export const RECEIPTS_LIMIT = 20;

/**
 * Who hears that an account's read position moved: at once, the account's
 * other connections, so that a second device clears its unread marker; and
 * in a room of at most `RECEIPTS_LIMIT` people, everyone, in one receipts
 * frame per batch window however many read, listing each connection of
 * each account that moved. What is still to be sent lives in memory: a
 * restart closes the sockets, and those who come back are told the
 * positions as they are.
 */
export class Receipts {
  /** Accounts whose position moved since the last receipts frame, and to where. */
  readonly #moved = new Map<string, number>();
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly parts: Pick<RoomParts, "name" | "config"> & {
      roster: Pick<Roster, "size" | "all" | "ofAccount">;
      reads: Pick<Reads, "positions">;
      broadcast: Pick<Broadcast, "toSome" | "toEveryone">;
    },
  ) {}

  /** The connection `reader` moved its account's position to `seq`. */
  moved(reader: string, account: string, seq: number): void {
    const { config, roster, broadcast } = this.parts;
    const others = roster.ofAccount(account).filter((entry) => entry.id !== reader);
    if (others.length > 0) broadcast.toSome(others, { type: "read", seq });
    if (roster.size > RECEIPTS_LIMIT) return;
    this.#moved.set(account, seq);
    this.#timer ??= setTimeout(() => this.#flush(), presenceWindowMs(config.presenceBatchMs, roster.size));
  }

  /** How far those online have read, for someone who just came in to a small room; null when nobody has said. */
  current(): ReceiptsFrame | null {
    const { roster, reads } = this.parts;
    if (roster.size > RECEIPTS_LIMIT) return null;
    const online = roster.all().flatMap((entry) => {
      const account = accountOf(entry);
      return account === null ? [] : [{ entry, account }];
    });
    const positions = reads.positions(Array.from(new Set(online.map((o) => o.account))));
    const receipts = online.flatMap(({ entry, account }) => {
      const seq = positions.get(account);
      return seq === undefined ? [] : [{ user: toUser(entry), seq }];
    });
    return receipts.length === 0 ? null : { type: "receipts", receipts };
  }

  #flush(): void {
    this.#timer = undefined;
    const moved = Array.from(this.#moved);
    this.#moved.clear();
    const { name, roster, broadcast } = this.parts;
    // A room that grew past the limit within the window tells nobody.
    if (roster.size > RECEIPTS_LIMIT) return;
    try {
      const receipts = moved.flatMap(([account, seq]) => roster.ofAccount(account).map((entry) => ({ user: toUser(entry), seq })));
      if (receipts.length > 0) broadcast.toEveryone({ type: "receipts", receipts });
    } catch (error) {
      log({ event: "error", room: name, handler: "receipts", message: describe(error) });
    }
  }
}
