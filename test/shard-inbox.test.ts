import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { MessageFrame, ServerFrame } from "../src/protocol";
import { DEFAULTS } from "../src/platform/config";
import { Inbox } from "../src/shard/inbox";
import type { Delivery } from "../src/shard/messages";
import { type Member, SocketSet } from "../src/sockets/socket-set";
import { uniqueRoom } from "./support/client";
import { waitFor } from "./support/frames";

const shardOf = (room: string, k: number) => env.SHARDS.getByName(`${room}#${k}`);

describe("a shard's inbox", () => {
  /** Both ends of a socket; what the server end sends arrives at the client end. */
  function pair(): { server: WebSocket; received: string[] } {
    const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
    const received: string[] = [];
    client.accept();
    server.accept();
    client.addEventListener("message", (event) => received.push(event.data as string));
    return { server, received };
  }

  it("gives a socket that arrives after its welcome what came after its mark, and nothing meant for others", async () => {
    const member = (id: string): Member => ({ id, name: id, format: "json", joinedAt: 0, address: id, bucket: { tokens: 1, at: 0 } });
    const message = (seq: number): MessageFrame => ({ type: "message", seq, user: { id: "1", name: "1" }, text: `#${seq}`, at: 0 });
    await runInDurableObject(shardOf(uniqueRoom("inbox"), 1), async (_, state) => {
      const inbox = new Inbox(state.storage.sql);
      const sockets = new SocketSet(DEFAULTS, () => "inbox");
      const old = pair();
      sockets.add(old.server, member("1"));
      const deliver = (items: Delivery["items"]) => inbox.apply({ instance: "i", fill: null, items, online: 2 }, sockets);
      deliver([{ n: 1, frame: message(4) }]);
      // The room placed member 2 at mark 1; its welcome and what follows reach the shard before its socket does.
      deliver([
        { n: 2, frame: { type: "ack", id: "a", seq: 5 }, to: "1" },
        {
          n: 3,
          frame: { type: "history", messages: [message(4)], changes: [], oldestSeq: 4, lastSeq: 4, gap: false, reset: false, more: false, epoch: "e" },
          to: "2",
        },
        { n: 4, frame: message(5) },
      ]);
      const late = pair();
      const newcomer = { ...member("2"), mark: { instance: "i", n: 1 }, after: 4 };
      sockets.add(late.server, newcomer);
      expect(inbox.admit(late.server, newcomer, sockets)).toBe(true);
      deliver([{ n: 5, frame: message(6) }]);

      await waitFor(
        () => late.received.length >= 3 && old.received.length >= 4,
        () => `frames; the newcomer has ${late.received.join(" | ")}`,
      );
      expect(late.received.map((f) => (JSON.parse(f) as ServerFrame).type)).toEqual(["history", "message", "message"]);
      expect(late.received.slice(1).map((f) => (JSON.parse(f) as MessageFrame).seq)).toEqual([5, 6]);
      expect(old.received.map((f) => (JSON.parse(f) as ServerFrame).type)).toEqual(["message", "ack", "message", "message"]);
    });
  });
});
