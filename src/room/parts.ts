import type { Config } from "../platform/config";
import type { Shards } from "../shard/outbox";
import type { Alarm } from "../sockets/alarm";
import type { SocketSet } from "../sockets/socket-set";
import type { Accounts } from "./accounts";
import type { AddressBook } from "./addresses";
import type { DirectMembers } from "./direct";
import type { History } from "./history";
import type { Peer } from "./peer";
import type { Reads } from "./reads";
import type { Roster } from "./roster";
import type { Sanctions } from "./sanctions";
import type { MessageSearch } from "./search";
import type { Sequencer } from "./sequencer";
import type { RoomStore } from "./store";

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
