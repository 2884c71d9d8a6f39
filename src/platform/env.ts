import type { ConfigVars } from "./config";
import type { Account } from "../account/account";
import type { Room } from "../room/room";
import type { Shard } from "../shard/shard";

export interface Env extends ConfigVars {
  ROOMS: DurableObjectNamespace<Room>;
  /** The objects that hold a room's sockets beyond `SHARD_SIZE`; see `../shard/shard.ts`. */
  SHARDS: DurableObjectNamespace<Shard>;
  /** Each account's own object, by its token's `sub`: the rooms it is in. See `../account/account.ts`. */
  ACCOUNTS: DurableObjectNamespace<Account>;
  /** The web client in `public/`. */
  ASSETS: Fetcher;
  /** Origins allowed to open sockets from a browser; see `../worker/origin.ts`. */
  ALLOWED_ORIGINS?: string;
  /** A wrangler secret that signs and checks HS256 tokens. See `../auth/token.ts`. */
  ROOM_SECRET?: string;
  /** The identity provider's JWKS, against which RS256 and ES256 tokens are checked. See `../auth/token.ts`. */
  AUTH_JWKS_URL?: string;
}
