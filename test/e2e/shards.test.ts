import { describe, expect, it, inject } from "vitest";
import type { MessageFrame, RoomInfo, ServerFrame } from "../../src/protocol";
import { waitFor } from "../support/frames";
import { connect, type WsClient } from "../support/e2e/ws-client";

// The dev server runs with SHARD_SIZE=10 (see test/support/e2e/wrangler-dev.ts).

function messagesOf(client: WsClient): MessageFrame[] {
  return client.frames
    .filter((f) => f.startsWith("{"))
    .map((f) => JSON.parse(f) as ServerFrame)
    .flatMap((f) => (f.type === "message" ? [f] : f.type === "history" ? f.messages : []));
}

describe("a crowd of 45 in one room, on five objects", () => {
  it("gives everyone every message once and in order, acks to each sender, and counts everyone", async () => {
    const room = "e2e-crowd";
    const clients = await Promise.all(Array.from({ length: 45 }, (_, i) => connect(`/rooms/${room}?name=p${i}`)));
    const tex = await connect(`/rooms/${room}?name=tex&format=text`);
    for (const client of clients) await client.next("welcome");
    const api = (await (await fetch(`${inject("devUrl")}/api/rooms/${room}`)).json()) as RoomInfo;
    expect(api).toMatchObject({ online: 46, objects: 5 });

    const senders = [clients[0]!, clients[17]!, clients[44]!];
    for (let i = 0; i < 10; i++) for (const [s, sender] of senders.entries()) sender.send({ type: "message", text: `${s}:${i}`, id: `${s}-${i}` });
    const everyone = [...clients];
    await waitFor(
      () => everyone.every((c) => messagesOf(c).length >= 30),
      () => `30 messages at every client; counts: ${everyone.map((c) => messagesOf(c).length).join(",")}`,
      30_000,
    );
    const seqs = Array.from({ length: 30 }, (_, i) => i + 1);
    for (const client of everyone) expect(messagesOf(client).map((m) => m.seq)).toEqual(seqs);
    for (const [s, sender] of senders.entries()) {
      const acks = sender.frames.filter((f) => f.startsWith('{"type":"ack"')).map((f) => JSON.parse(f) as { id: string });
      expect(acks.map((a) => a.id).sort()).toEqual(Array.from({ length: 10 }, (_, i) => `${s}-${i}`).sort());
    }
    await waitFor(
      () => tex.frames.filter((f) => /^p\d+: \d:\d$/.test(f)).length === 30,
      () => `tex's 30 lines; it has ${tex.frames.length} frames`,
    );

    // The last one to join is on the last shard; its leave reaches the room's first socket once.
    clients[44]!.ws.close(1000, "bye");
    await waitFor(
      () => clients[0]!.frames.some((f) => f.startsWith('{"type":"presence"') && f.includes('"left":[{') && f.includes('"p44"')),
      () => "p44's leave at p0",
    );
    const leaves = clients[0]!.frames.filter((f) => f.startsWith('{"type":"presence"') && f.includes('"name":"p44"') && f.includes('"left":[{'));
    expect(leaves).toHaveLength(1);
  });
});
