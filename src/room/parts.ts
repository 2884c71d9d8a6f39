import type { Config } from "../platform/config";
import { Shards, type ShardLink } from "../shard/outbox";
import type { Alarm } from "../sockets/alarm";
import type { SocketSet } from "../sockets/socket-set";
import { Accounts } from "./accounts";
import { AddressBook } from "./addresses";
import { DirectMembers } from "./direct";
import { History } from "./history";
import type { Peer } from "./peer";
import { Reads } from "./reads";
import { Roster } from "./roster";
import { Sanctions } from "./sanctions";
import { MessageSearch } from "./search";
import { Sequencer } from "./sequencer";
import { RoomStore } from "./store";

/**
 * What a room is built from, once per instance, by `Room`. Each of the
 * room's modules takes the few it uses (a `Pick` of these), so that a test
 * can build one with only those.
 */
export interface RoomParts {
  /** The room's name, as its log lines give it. */
  name: string;
  config: Config;
  storage: DurableObjectStorage;
  store: RoomStore;
  history: History;
  search: MessageSearch;
  sequencer: Sequencer<Peer>;
  /** The room's own sockets; the others are on its shards. */
  sockets: SocketSet;
  roster: Roster;
  /** Token accounts that have been in the room, who may be mentioned while away. */
  accounts: Accounts;
  /** How far each account has read. */
  reads: Reads;
  shards: Shards;
  addresses: AddressBook;
  sanctions: Sanctions;
  /** In a direct conversation, its two accounts. */
  direct: DirectMembers;
  schedule: Alarm;
}

/**
 * Builds a room's parts over its storage and the sockets it restored on
 * waking: the state in SQLite is read once here, and the indexes kept in
 * memory are rebuilt from it and from the sockets' attachments.
 */
export function roomParts(
  ctx: DurableObjectState,
  name: string,
  config: Config,
  sockets: SocketSet,
  schedule: Alarm,
  link: Pick<ShardLink, "stub" | "lost">,
): RoomParts {
  const sql = ctx.storage.sql;
  const store = new RoomStore(sql, [History.SCHEMA, MessageSearch.SCHEMA, AddressBook.SCHEMA, Roster.SCHEMA, Sanctions.SCHEMA, Accounts.SCHEMA, Reads.SCHEMA]);
  const history = new History(ctx.storage, store);
  // After History, which gives an older room's messages the columns the index's triggers read.
  const search = new MessageSearch(ctx.storage, store, config.rateLimitPer10s);
  const sequencer = new Sequencer<Peer>(history, config.historyLimit);
  const addresses = new AddressBook(sql, store, {
    connectsPerMinute: config.connectsPerMinute,
    framesPer10s: config.addressShare * config.rateLimitPer10s,
  });
  const members = Array.from(sockets.entries(), ([, member]) => member);
  const roster = new Roster(sql, store, members);
  for (const member of members) {
    if (member.addressFrames !== undefined) addresses.restoreFrames(member.address, member.addressFrames);
  }
  const shards = new Shards({
    ...link,
    room: name,
    online: () => roster.size,
    broadcastSeq: () => sequencer.broadcastSeq,
    // Whatever a shard's sockets missed, changes to any message included: some of them may hold it.
    history: (after, limit) => history.after(after, limit, Number.MAX_SAFE_INTEGER),
    count: (k) => roster.countOn(k),
    members: (k) => roster.onShard(k),
  });
  return {
    name,
    config,
    storage: ctx.storage,
    store,
    history,
    search,
    sequencer,
    sockets,
    roster,
    accounts: new Accounts(sql, store),
    reads: new Reads(sql, store, history),
    shards,
    addresses,
    sanctions: new Sanctions(sql, store),
    direct: new DirectMembers(sql, store, name),
    schedule,
  };
}
