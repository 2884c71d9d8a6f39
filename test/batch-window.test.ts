import { env, runInDurableObject } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { MessageFrame, ServerFrame, WireFrame } from "../src/protocol";
import { type Member, SocketSet } from "../src/sockets/socket-set";
import { Client, nextAddress, uniqueRoom } from "./support/client";
import { frozenClock } from "./support/clock";
import { waitFor } from "./support/frames";

// When an object batches, and windows that end by themselves. What a batch
// holds, and in what order, is tested in batching.test.ts, where windows
// never end by themselves.

/** Both ends of a socket; what the server end sends arrives at the client end. */
function pair(): { server: WebSocket; received: string[] } {
  const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
  const received: string[] = [];
  client.accept();
  server.accept();
  client.addEventListener("message", (event) => {
    received.push(event.data as string);
  });
  return { server, received };
}

const member = (id: string, batch: boolean): Member => ({
  id,
  name: id,
  format: "json",
  joinedAt: 0,
  address: id,
  bucket: { tokens: 1, at: 0 },
  ...(batch && { batch: true as const }),
});
const message = (seq: number): MessageFrame => ({ type: "message", seq, user: { id: "1", name: "1" }, text: `#${seq}`, at: 0 });
const seqs = (received: string[]) =>
  received.flatMap((text) => {
    const frame = JSON.parse(text) as WireFrame;
    return (frame.type === "batch" ? frame.frames : [frame]).map((f) => (f as MessageFrame).seq);
  });

describe("an object's batching", () => {
  it("sends each frame at once below BATCH_ABOVE broadcasts a second, and batches above it until the rate falls again", async () => {
    const clock = frozenClock();
    await runInDurableObject(env.SHARDS.getByName(`${uniqueRoom("window")}#1`), async () => {
      const sockets = new SocketSet({ batchMs: 20, batchAbove: 5 }, () => "window");
      const opted = pair();
      const plain = pair();
      const other = pair();
      sockets.add(opted.server, member("1", true));
      sockets.add(plain.server, member("2", false));
      sockets.add(other.server, member("3", true));

      // Five broadcasts in no time are a rate of 5 a second, not above it; the sixth is.
      for (let seq = 1; seq <= 12; seq++) sockets.fanOut(message(seq));
      await waitFor(
        () => seqs(opted.received).length === 12 && plain.received.length === 12,
        () => `12 messages at both; the opted-in socket has ${opted.received.join(" | ")}, the other ${plain.received.length}`,
      );
      // The window ended by itself, after BATCH_MS, as one frame.
      expect(opted.received.map((f) => (JSON.parse(f) as WireFrame).type)).toEqual([...Array(5).fill("message"), "batch"]);
      expect(seqs(opted.received)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
      expect(plain.received.map((f) => (JSON.parse(f) as ServerFrame).type)).toEqual(Array(12).fill("message"));
      await waitFor(
        () => other.received.length === 6,
        () => `the other opted-in socket's batch; it has ${other.received.join(" | ")}`,
      );
      expect(other.received).toEqual(opted.received);

      // Still busy a moment later: the next broadcast opens a window again, whatever else it holds goes with it.
      clock.advance(100);
      sockets.fanOut(message(13));
      sockets.send(opted.server, { type: "ack", id: "a", seq: 13 });
      await waitFor(
        () => opted.received.length === 7,
        () => `a second batch; the opted-in socket has ${opted.received.slice(6).join(" | ")}`,
      );
      expect(JSON.parse(opted.received[6]!)).toMatchObject({ type: "batch", frames: [{ seq: 13 }, { type: "ack", id: "a" }] });
      // Its ack is its own: the other socket's window held the message alone, which comes as itself.
      await waitFor(
        () => other.received.length === 7,
        () => `message 13 at the other opted-in socket; it has ${other.received.slice(6).join(" | ")}`,
      );
      expect(JSON.parse(other.received[6]!)).toMatchObject({ type: "message", seq: 13 });

      // Seconds later the rate has fallen below the threshold: each frame at once again.
      clock.advance(5_000);
      sockets.fanOut(message(14));
      await waitFor(
        () => opted.received.length === 8,
        () => "message 14 by itself",
      );
      expect(JSON.parse(opted.received[7]!)).toMatchObject({ type: "message", seq: 14 });
    });
  });

  it("never batches with BATCH_MS=0", async () => {
    await runInDurableObject(env.SHARDS.getByName(`${uniqueRoom("off")}#1`), async () => {
      const sockets = new SocketSet({ batchMs: 0, batchAbove: 0 }, () => "off");
      const opted = pair();
      sockets.add(opted.server, member("1", true));
      for (let seq = 1; seq <= 20; seq++) sockets.fanOut(message(seq));
      await waitFor(
        () => opted.received.length >= 20,
        () => `20 frames; got ${opted.received.length}`,
      );
      expect(opted.received.every((f) => (JSON.parse(f) as WireFrame).type === "message")).toBe(true);
    });
  });
});

describe("a quiet room", () => {
  it("sends a socket that asked for batches every frame by itself, at once", async () => {
    const room = uniqueRoom("quiet");
    const ann = await Client.join(`/rooms/${room}?name=ann&batch=1`);
    const bob = await Client.join(`/rooms/${room}?name=bob`);
    await ann.presence({ joined: 1 });
    for (const text of ["one", "two", "three"]) {
      bob.send(text);
      expect((await ann.next("message")).text).toBe(text);
    }
    ann.send({ type: "message", text: "four", id: "f" });
    expect((await ann.next("message")).text).toBe("four");
    expect(await ann.next("ack")).toMatchObject({ id: "f" });
  });
});

describe("asking for batches", () => {
  it("refuses ?batch= other than 0 or 1 before the upgrade, with bad_batch", async () => {
    const response = await exports.default.fetch(`http://chat.test/rooms/${uniqueRoom("bad")}?batch=yes`, {
      headers: { Upgrade: "websocket", "CF-Connecting-IP": nextAddress() },
    });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ code: "bad_batch" });
  });

  it("answers a batching request without a boolean `on` with bad_message, and one with it with its answer", async () => {
    const ann = await Client.join(`/rooms/${uniqueRoom("request")}?name=ann`);
    ann.send({ type: "batching", on: "yes", id: "b" });
    expect(await ann.next("error")).toMatchObject({ code: "bad_message", id: "b" });
    ann.send({ type: "batching", on: true, id: "c" });
    expect(await ann.next("batching")).toEqual({ type: "batching", on: true, id: "c" });
  });
});
