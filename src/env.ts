import type { ConfigVars } from "./config";
import type { Room } from "./room";

export interface Env extends ConfigVars {
  ROOMS: DurableObjectNamespace<Room>;
  /** The web client in `public/`. */
  ASSETS: Fetcher;
  /** Origins allowed to open sockets from a browser; see `origin.ts`. */
  ALLOWED_ORIGINS?: string;
  /** A wrangler secret; when set, `private-` rooms need a signed token. See `token.ts`. */
  ROOM_SECRET?: string;
}
