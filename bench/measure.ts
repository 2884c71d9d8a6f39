// What the scenarios of `npm run bench` measure with: opening clients,
// waiting for the room to settle, sending at a steady rate, and the
// figures a run of deliveries comes to.
import type { DevServer } from "../test/support/e2e/wrangler.ts";
import type { Result } from "./report.ts";
import { type Client, type Kind, pace, percentile, type Receipts, workerdUsage } from "./load.ts";

export type Metrics = Record<string, number>;

const OPEN = 1;

/** A scenario: what it measured on one server. */
export type Runner = (server: DevServer, kind: Kind) => Promise<Metrics>;

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let nextId = 0;
/** A fresh id for each message sent, across scenarios. */
export const id = () => ++nextId;

/** A room's URL for one client: resuming after `since`, and taking `batch` frames while the room is busy (`?batch=1`). */
export function wsUrl(server: DevServer, kind: Kind, room: string, name: string, { since, batch = false }: { since?: number; batch?: boolean } = {}): string {
  const url = new URL(`/rooms/${room}`, server.url.replace("http", "ws"));
  if (kind === "room") {
    url.searchParams.set("name", name);
    if (since !== undefined) url.searchParams.set("since", String(since));
    if (batch) url.searchParams.set("batch", "1");
  }
  return url.href;
}

export async function until(ready: () => boolean, ms: number): Promise<void> {
  const deadline = performance.now() + ms;
  while (!ready() && performance.now() < deadline) await sleep(20);
}

/** Opens `count` clients with at most `inflight` handshakes under way, and returns them with their connect times. */
export async function connectAll(count: number, inflight: number, make: (i: number) => Client): Promise<{ clients: Client[]; times: number[] }> {
  const clients: Client[] = [];
  const times: number[] = [];
  let next = 0;
  const lane = async () => {
    while (next < count) {
      const client = make(next++);
      clients.push(client);
      times.push(await client.ready());
    }
  };
  await Promise.all(Array.from({ length: Math.min(inflight, count) }, lane));
  return { clients, times: times.sort((a, b) => a - b) };
}

/**
 * Pings from every open client every 20 s, as real clients do, until the
 * returned function is called: for runs that outlast
 * HEARTBEAT_TIMEOUT_SECONDS (60), after which the room closes sockets it
 * has not heard from. `clients` may still be filling up.
 */
export function keepAlive(clients: Client[]): () => void {
  const timer = setInterval(() => {
    for (const client of clients) if (client.ws.readyState === OPEN) client.ws.send("ping");
  }, 20_000);
  return () => clearInterval(timer);
}

/** Waits until `value` has not changed for half a second (or 30 s have passed). */
export async function quiet(value: () => number): Promise<void> {
  const deadline = performance.now() + 30_000;
  let last = -1;
  while (value() !== last && performance.now() < deadline) {
    last = value();
    await sleep(500);
  }
}

export function latencyMetrics(receipts: Receipts): Metrics {
  const sorted = receipts.latencies.sort((a, b) => a - b);
  return { p50_ms: percentile(sorted, 50), p90_ms: percentile(sorted, 90), p99_ms: percentile(sorted, 99), max_ms: sorted.at(-1) ?? NaN };
}

/** Sends at a steady rate through the room and measures every delivery. */
export async function burst(
  server: DevServer,
  clients: Client[],
  receipts: Receipts,
  senders: number,
  messagesPerSecond: number,
  seconds: number,
  size: number,
): Promise<Metrics> {
  // What is still on its way from an earlier measurement is told apart by its id.
  receipts.reset(id() + 1);
  for (const client of clients) client.seen.clear();
  const before = workerdUsage(server.pid());
  const start = performance.now();
  const sent = await pace(clients.slice(0, senders), messagesPerSecond, seconds, size, id);
  const expected = sent * clients.length;
  await until(() => receipts.deliveries >= expected, 5_000);
  const elapsed = (Math.max(receipts.last, start + seconds * 1000) - start) / 1000;
  const after = workerdUsage(server.pid());
  return {
    offered_per_s: (sent * clients.length) / seconds,
    delivered_per_s: receipts.deliveries / elapsed,
    ...latencyMetrics(receipts),
    loss: expected - receipts.deliveries,
    duplicates: receipts.duplicates,
    cpu_percent: ((after.cpuSeconds - before.cpuSeconds) / elapsed) * 100,
    rss_mb: after.rssMb,
  };
}

/** Runs a scenario `rounds` times on each server, alternating, and keeps each metric's median. */
export async function alternate(scenario: string, room: DevServer, relay: DevServer, rounds: number, run: Runner): Promise<Result> {
  const runs: Record<Kind, Metrics[]> = { room: [], relay: [] };
  for (let i = 0; i < rounds; i++) {
    runs.room.push(await run(room, "room"));
    runs.relay.push(await run(relay, "relay"));
  }
  const median = (list: Metrics[]): Metrics =>
    Object.fromEntries(
      Object.keys(list[0]!).map((key) => [
        key,
        percentile(
          list.map((m) => m[key]!).sort((a, b) => a - b),
          50,
        ),
      ]),
    );
  return { scenario, room: median(runs.room), relay: median(runs.relay) };
}
