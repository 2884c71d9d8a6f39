import { exports } from "cloudflare:workers";
import { vi } from "vitest";
import type { MessageFrame, RoomInfo, ServerFrame } from "../../src/protocol";
import type { Delivery } from "../../src/shard/messages";
import { Shard } from "../../src/shard/shard";
import { Client } from "./client";
import { waitFor } from "./frames";

// What the tests of rooms across objects (test/shards.test.ts) do again and again.

/** Joins `n` clients one after another, named `<prefix><i>`, each with its own address. */
export async function crowd(room: string, n: number, prefix = "u", query = ""): Promise<Client[]> {
  const clients: Client[] = [];
  for (let i = 0; i < n; i++) clients.push(await Client.join(`/rooms/${room}?name=${prefix}${i}${query}`));
  return clients;
}

export function parsed(client: Client): ServerFrame[] {
  return client.frames.filter((f) => f.startsWith("{")).map((f) => JSON.parse(f) as ServerFrame);
}

/** Every message a client has received, live or in history frames, in the order received. */
export function messagesOf(client: Client): MessageFrame[] {
  return parsed(client).flatMap((f) => (f.type === "message" ? [f] : f.type === "history" ? f.messages : []));
}

export async function untilMessages(clients: Client[], count: number): Promise<void> {
  await waitFor(
    () => clients.every((c) => messagesOf(c).length >= count),
    () => `${count} messages at every client; they have ${clients.map((c) => messagesOf(c).length).join(", ")}`,
  );
}

export async function info(room: string): Promise<RoomInfo> {
  return (await (await exports.default.fetch(`http://chat.test/api/rooms/${room}`)).json()) as RoomInfo;
}

/**
 * Makes the next call to shard 1 of `room` carrying a frame of this type
 * report it applied but deliver nothing, as a lost call would, after the
 * shard had delivered seq 1. Returns whether that call happened yet.
 */
export function loseNextDelivery(room: string, type: ServerFrame["type"]): () => boolean {
  const real = Shard.prototype.deliver;
  let lost = false;
  vi.spyOn(Shard.prototype, "deliver").mockImplementation(function (this: Shard, delivery: Delivery) {
    const mine = delivery.items.some((i) => "frame" in i && i.frame.type === type) && this.ctx.id.name === `${room}#1`;
    if (lost || !mine) return real.call(this, delivery);
    lost = true;
    return { applied: delivery.items.at(-1)!.n, delivered: 1, held: this.census().members.length };
  });
  return () => lost;
}

export const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
