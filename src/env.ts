import type { ConfigVars } from "./config";
import type { Room } from "./room";

export interface Env extends ConfigVars {
  ROOMS: DurableObjectNamespace<Room>;
}
