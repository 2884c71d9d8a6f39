import type { MessagePage } from "../../../src/protocol";
import type { DevServer } from "./wrangler";

/** Every message a room keeps, oldest first, over HTTP. */
export async function storedTexts(server: DevServer, room: string): Promise<string[]> {
  const response = await fetch(`${server.url}/api/rooms/${room}/messages?limit=500`);
  return ((await response.json()) as MessagePage).messages.map((m) => m.text);
}
