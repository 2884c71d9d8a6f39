export interface ChatClientOptions {
  /** The room's WebSocket URL, such as `ws://127.0.0.1:8787/rooms/lobby`; its query is replaced. */
  url: string;
  /** The display name, unless a token names its holder. */
  name?: string;
  /**
   * A token (JWT) for the room, or a function that returns one, which is
   * called before each connection: a short-lived token stays fresh, and a
   * socket closed for an expired token comes back with a new one. It goes
   * to the room as a WebSocket subprotocol, and as `Authorization: Bearer`
   * when the client asks why it was refused: never in a URL, which logs keep.
   */
  token?: string | (() => string | Promise<string>);
  /**
   * A stable, unguessable id for this client (`?client=`). Message ids are
   * deduplicated per client id, and it makes you the author of your
   * messages across connections. Default: a new random one per client.
   */
  clientId?: string;
  /** How often an open socket pings the room. Default 25,000 ms. */
  pingEveryMs?: number;
  /** How long a pong may take before the socket counts as dead and is replaced. Default 10,000 ms. */
  pongWithinMs?: number;
}
