// npm run bench [-- --scenarios=fanout,capacity,idle,churn --clients=200 ...]
// Runs each scenario against the chat room and the bare relay baseline
// (bench/relay), each under wrangler dev on loopback, and prints a table and
// one JSON line per scenario. A server starts the first time a chosen
// scenario needs it and stops once no scenario left needs it; on Ctrl-C, a
// termination or a crash, the helper stops whatever is up
// (test/support/e2e/wrangler.ts).
import { existsSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { parseArgs } from "node:util";
import { ONE_ADDRESS_FOR_ALL, startDevServer, type DevServer, type DevServerOptions } from "../test/support/e2e/wrangler.ts";
import { Client, pace, percentile, Receipts, tokened, workerdUsage, type Kind } from "./load.ts";
import { report, type Result } from "./report.ts";
import { signToken } from "../src/auth/grant.ts";
import type { MyRooms } from "../src/protocol/http.ts";
import { alternate, type Runner, burst, connectAll, id, keepAlive, latencyMetrics, quiet, sleep, until, wsUrl, type Metrics } from "./measure.ts";

const { values: opts } = parseArgs({
  options: {
    scenarios: { type: "string", default: "fanout,capacity,storm,crowd,idle,churn" },
    clients: { type: "string", default: "200" },
    senders: { type: "string", default: "10" },
    rate: { type: "string", default: "5" },
    duration: { type: "string", default: "8" },
    rounds: { type: "string", default: "3" },
    size: { type: "string", default: "100" },
    "step-seconds": { type: "string", default: "2.5" },
    "idle-clients": { type: "string", default: "1000" },
    "idle-seconds": { type: "string", default: "30" },
    churners: { type: "string", default: "100" },
    "storm-clients": { type: "string", default: "1000" },
    "storm-inflight": { type: "string", default: "200" },
    "hot-rates": { type: "string", default: "5,30,60" },
    "batch-ms": { type: "string" },
    "batch-above": { type: "string" },
    "crowd-clients": { type: "string", default: "4000" },
    "crowd-shard-size": { type: "string", default: "500" },
    "accounts-clients": { type: "string", default: "1000" },
    // Local storage in memory when the machine has /dev/shm: see docs/performance.md ("Storage location").
    "state-dir": { type: "string", default: existsSync("/dev/shm") ? "/dev/shm" : tmpdir() },
    help: { type: "boolean", default: false },
  },
});
if (opts.help) {
  console.log(`npm run bench -- [options]
  --scenarios=fanout,capacity,storm,crowd,idle,churn   which to run (default: these; also hot and accounts)
  --clients=200        clients in the room (fanout, capacity, hot)
  --senders=10         how many of them send (fanout, capacity, hot)
  --rate=5             messages per second per sender (fanout)
  --duration=8         seconds of sending (fanout, churn, hot)
  --hot-rates=5,30,60  messages per second per sender, one step each (hot: a busy room whose clients
                       take batches, the relay, and the room's clients without batches, in one run)
  --batch-ms=N --batch-above=N   the room's BATCH_MS and BATCH_ABOVE (default: the room's own, 20 and 100)
  --rounds=3           fanout runs per server, alternating; the table shows medians
  --size=100           characters of message text
  --step-seconds=2.5   seconds per rate step (capacity)
  --idle-clients=1000  --idle-seconds=30   idle clients pinging every 25 s, and for how long
  --churners=100       clients reconnecting in a loop (churn)
  --storm-clients=1000 --storm-inflight=200   clients joining at once, and handshakes in flight (storm;
                       it also runs 200 clients all at once)
  --crowd-clients=4000 --crowd-shard-size=500   one room on several objects (crowd; 5 senders × 1
                       message/s), against the same clients in a one-object room; about 4,800 sockets
                       is where one local server runs out of file descriptors
  --accounts-clients=1000   token accounts in one room (accounts): what joining, messaging and
                       reading GET /api/me/rooms cost the accounts' own objects
  --state-dir=DIR      where wrangler keeps local storage (default /dev/shm if present)`);
  process.exit(0);
}
// wrangler dev records a trace of every handler run and storage call into a
// store inside the same workerd. That exists only in local development, and
// it taxes the room (which calls storage) more than the relay. The
// environment can still turn it back on: X_LOCAL_OBSERVABILITY=true.
process.env.X_LOCAL_OBSERVABILITY ??= "false";
const n = (key: keyof typeof opts) => Number(opts[key]);
const scenarios = String(opts.scenarios).split(",");

/**
 * Limits raised so that they do not shape the load; they stay switched on.
 * Rooms stay on one object, as the relay does, except in the crowd scenario.
 */
const ROOM_VARS = {
  ...ONE_ADDRESS_FOR_ALL,
  RATE_LIMIT_PER_10S: "10000000",
  MAX_CONNECTIONS_PER_ROOM: "100000",
  MAX_FRAME_BYTES: "1048576",
  SHARD_SIZE: "100000",
  ...(opts["batch-ms"] !== undefined && { BATCH_MS: opts["batch-ms"] }),
  ...(opts["batch-above"] !== undefined && { BATCH_ABOVE: opts["batch-above"] }),
};

const RELAY_CONFIG = "bench/relay/wrangler.toml";
/** Signs the accounts scenario's tokens; a local server's only. */
const BENCH_SECRET = "bench-only-secret";

/** The servers that scenarios run against. */
const SERVERS = {
  room: { vars: ROOM_VARS },
  relay: { config: RELAY_CONFIG },
  // For the idle and crowd scenarios: servers that log each handler run, so wake-ups and calls can be counted.
  tracedRoom: { vars: { ...ROOM_VARS, TRACE_WAKEUPS: "1" } },
  tracedRelay: { vars: { TRACE_WAKEUPS: "1" }, config: RELAY_CONFIG },
  shardedRoom: { vars: { ...ROOM_VARS, TRACE_WAKEUPS: "1", SHARD_SIZE: String(opts["crowd-shard-size"]) } },
  // For the accounts scenario: traced, and signing its own tokens.
  signingRoom: { vars: { ...ROOM_VARS, TRACE_WAKEUPS: "1", ROOM_SECRET: BENCH_SECRET } },
} satisfies Record<string, DevServerOptions>;
type ServerName = keyof typeof SERVERS;

async function fanout(server: DevServer, kind: Kind): Promise<Metrics> {
  const room = `fanout-${Date.now()}`;
  const receipts = new Receipts();
  const { clients, times } = await connectAll(n("clients"), n("clients"), (i) => new Client(wsUrl(server, kind, room, `c${i}`), kind, receipts));
  await sleep(1_000);
  const metrics = await burst(server, clients, receipts, n("senders"), n("senders") * n("rate"), n("duration"), n("size"));
  console.error(
    `  ${kind} fanout: p50 ${metrics.p50_ms!.toFixed(1)} ms, p99 ${metrics.p99_ms!.toFixed(1)} ms, max ${metrics.max_ms!.toFixed(1)} ms, cpu ${metrics.cpu_percent!.toFixed(1)} %`,
  );
  await Promise.all(clients.map((c) => c.close()));
  return { connect_p50_ms: percentile(times, 50), connect_p99_ms: percentile(times, 99), ...metrics };
}

/**
 * Steps the rate up until p99 passes 100 ms, a message is lost, or
 * deliveries fall behind. The room's clients take batches unless `batch` is false.
 */
async function capacity(server: DevServer, kind: Kind, batch = true): Promise<Metrics> {
  const room = `capacity-${Date.now()}`;
  const receipts = new Receipts();
  const { clients } = await connectAll(n("clients"), n("clients"), (i) => new Client(wsUrl(server, kind, room, `c${i}`, { batch }), kind, receipts));
  const stopPinging = keepAlive(clients);
  await sleep(1_000);
  let best: Metrics = { delivered_per_s: 0 };
  for (let offered = 10_000; offered <= 200_000; offered += 10_000) {
    const step = await burst(server, clients, receipts, n("senders"), offered / clients.length, n("step-seconds"), n("size"));
    const held = step.p99_ms! <= 100 && step.loss === 0 && step.delivered_per_s! >= 0.97 * step.offered_per_s!;
    console.error(
      `  ${kind}${kind === "room" && !batch ? " without batches" : ""} capacity: offered ${offered}/s -> delivered ${Math.round(step.delivered_per_s!)}/s, p99 ${step.p99_ms!.toFixed(1)} ms, loss ${step.loss}${held ? "" : "  (limit)"}`,
    );
    if (!held) break;
    best = step;
    await sleep(500);
  }
  stopPinging();
  await Promise.all(clients.map((c) => c.close()));
  return { sustained_per_s: best.delivered_per_s!, p99_ms_at_best: best.p99_ms ?? NaN, cpu_percent_at_best: best.cpu_percent ?? NaN };
}

/**
 * A busy room three ways, in one run: the room with clients that take
 * batches (`?batch=1`), the relay, and the room with clients that do not.
 * Each has its own 200 clients, joined before the first step; at each rate
 * the three take turns, each left to drain before the next starts.
 */
async function hot(room: DevServer, relay: DevServer): Promise<Result[]> {
  const ways = [
    { label: "batched", server: room, kind: "room", batch: true },
    { label: "relay", server: relay, kind: "relay", batch: false },
    { label: "unbatched", server: room, kind: "room", batch: false },
  ] as const;
  const joined = [];
  for (const way of ways) {
    const name = `hot-${way.label}-${Date.now()}`;
    const receipts = new Receipts();
    const make = (i: number) => new Client(wsUrl(way.server, way.kind, name, `c${i}`, { batch: way.batch }), way.kind, receipts);
    const { clients } = await connectAll(n("clients"), n("clients"), make);
    joined.push({ ...way, receipts, clients });
  }
  const everyone = joined.flatMap(({ clients }) => clients);
  const stopPinging = keepAlive(everyone);
  // The first turn must not meet the joins' presence batches still going out.
  await quiet(() => everyone.reduce((sum, c) => sum + c.frames, 0));
  const results: Result[] = [];
  for (const rate of String(opts["hot-rates"]).split(",").map(Number)) {
    const measured: Metrics[] = [];
    for (const { label, server, receipts, clients } of joined) {
      const frames = () => clients.reduce((sum, c) => sum + c.frames, 0);
      const before = frames();
      const metrics = await burst(server, clients, receipts, n("senders"), n("senders") * rate, n("duration"), n("size"));
      // What a backlog still brings counts as late, not as the next turn's.
      await quiet(() => receipts.deliveries);
      // Frames on the wire per client per second: batches count once.
      const frames_per_client_s = (frames() - before) / clients.length / n("duration");
      console.error(
        `  hot ${label} at ${metrics.offered_per_s}/s: delivered ${Math.round(metrics.delivered_per_s!)}/s, loss ${metrics.loss}, p50 ${metrics.p50_ms!.toFixed(1)} ms, p99 ${metrics.p99_ms!.toFixed(1)} ms, cpu ${metrics.cpu_percent!.toFixed(0)} %, ${frames_per_client_s.toFixed(0)} frames/s per client`,
      );
      measured.push({ ...metrics, frames_per_client_s });
    }
    const [batched, baseline, unbatched] = measured as [Metrics, Metrics, Metrics];
    results.push({ scenario: `hot-${batched.offered_per_s}`, room: batched, relay: baseline, third: unbatched, columns: ["batched", "relay", "unbatched"] });
  }
  stopPinging();
  await Promise.all(joined.flatMap(({ clients }) => clients.map((c) => c.close())));
  return results;
}

/** Idle clients that only ping: how often does the object run a handler? */
async function idle(server: DevServer, kind: Kind): Promise<Metrics> {
  const room = `idle-${Date.now()}`;
  const receipts = new Receipts();
  const { clients } = await connectAll(n("idle-clients"), 100, (i) => new Client(wsUrl(server, kind, room, `c${i}`), kind, receipts));
  await sleep(2_000);
  let wakeups = 0;
  let alarms = 0;
  const stopCounting = server.onLine((line) => {
    if (line.includes('"event":"wake"')) wakeups++;
    if (line.includes('"handler":"alarm"')) alarms++;
  });
  const seconds = n("idle-seconds");
  let pings = 0;
  const timers = clients.map((client) => {
    const ping = () => {
      pings++;
      client.ws.send("ping");
    };
    const first = setTimeout(() => {
      ping();
      timers.push(setInterval(ping, 25_000));
    }, Math.random() * 25_000);
    return first;
  });
  const before = workerdUsage(server.pid());
  await sleep(seconds * 1000);
  for (const timer of timers) clearInterval(timer);
  const after = workerdUsage(server.pid());
  await sleep(500);
  stopCounting();
  const result = {
    pings,
    pongs: clients.reduce((sum, c) => sum + c.pongs, 0),
    wakeups,
    wakeups_from_alarms: alarms,
    cpu_percent: ((after.cpuSeconds - before.cpuSeconds) / seconds) * 100,
    rss_mb: after.rssMb,
  };
  // Dropped rather than closed one by one: a thousand leaves would each go to everyone left.
  for (const client of clients) client.ws.terminate();
  return result;
}

/**
 * A join storm: `count` clients joining at once, `--storm-inflight`
 * handshakes at a time, as when a class starts or every client reconnects
 * after a deploy. Connect times; every frame and byte the clients received
 * until the room went quiet, per join; then one message's fan-out to all.
 */
async function storm(server: DevServer, kind: Kind, count: number, inflight: number): Promise<Metrics> {
  const room = `storm-${count}-${Date.now()}`;
  const receipts = new Receipts();
  const { clients, times } = await connectAll(count, inflight, (i) => new Client(wsUrl(server, kind, room, `s${i}`), kind, receipts));
  const received = () => clients.reduce((sum, c) => sum + c.frames, 0);
  await quiet(received);
  const frames = received();
  const bytes = clients.reduce((sum, c) => sum + c.bytes, 0);
  receipts.reset();
  clients[0]!.ws.send(tokened(id(), n("size")));
  await until(() => receipts.deliveries >= clients.length, 10_000);
  const delivered = receipts.deliveries;
  const fan = latencyMetrics(receipts);
  console.error(`  ${kind} storm of ${count}: connect p99 ${percentile(times, 99).toFixed(0)} ms, ${(frames / count).toFixed(1)} frames per join`);
  // Dropped rather than closed one by one: a thousand leaves would each go to everyone left.
  for (const client of clients) client.ws.terminate();
  return {
    connect_p50_ms: percentile(times, 50),
    connect_p99_ms: percentile(times, 99),
    frames_per_join: frames / count,
    bytes_per_join: bytes / count,
    one_message_to_all: delivered,
    fanout_p50_ms: fan.p50_ms!,
    fanout_p99_ms: fan.p99_ms!,
  };
}

/**
 * People dropping and coming back while others talk: each churner reconnects
 * in a loop (resuming with `since` in the room; the relay has no such thing),
 * and must end up with every message sent after it first joined.
 */
async function churn(server: DevServer, kind: Kind): Promise<Metrics> {
  const room = `churn-${Date.now()}`;
  const talk = new Receipts();
  const { clients: senders } = await connectAll(5, 5, (i) => new Client(wsUrl(server, kind, room, `s${i}`), kind, talk));
  const sentAt = new Map<number, number>();
  const tracked = () => {
    const next = id();
    sentAt.set(next, performance.now());
    return next;
  };
  const stopAt = performance.now() + n("duration") * 1000;
  let reconnects = 0;
  const people = Array.from({ length: n("churners") }, async (_, i) => {
    const seen = new Set<number>();
    const receipts = new Receipts();
    let since: number | undefined;
    let firstJoined = Infinity;
    const visit = async (stayMs: number) => {
      const client = new Client(wsUrl(server, kind, room, `p${i}`, { since }), kind, receipts, seen);
      await client.ready();
      firstJoined = Math.min(firstJoined, performance.now());
      await sleep(stayMs);
      await client.close();
      since = client.lastSeq;
      reconnects++;
    };
    while (performance.now() < stopAt) await visit(100 + Math.random() * 500);
    return { seen, receipts, firstJoined, visit };
  });
  const sent = await pace(senders, 25, n("duration"), n("size"), tracked);
  const finished = await Promise.all(people);
  // Everyone comes back once more and waits for what it missed.
  const missing = () => finished.map((p) => [...sentAt].filter(([token, at]) => at > p.firstJoined && !p.seen.has(token)).length);
  await Promise.all(finished.map((p) => p.visit(1_500)));
  const lost = missing().reduce((a, b) => a + b, 0);
  await Promise.all(senders.map((c) => c.close()));
  return { sent, reconnects, lost, duplicates: finished.reduce((sum, p) => sum + p.receipts.duplicates, 0) };
}

/**
 * A crowd on one room, from the room's point of view: deliveries, loss,
 * fan-out and connect times, and what each message costs the room object
 * itself, counted from its trace (TRACE_WAKEUPS): frames to its own sockets,
 * and calls to shards (each shard's "deliver" handler runs).
 */
async function crowd(server: DevServer): Promise<Metrics> {
  const room = `crowd-${Date.now()}`;
  const receipts = new Receipts();
  const count = n("crowd-clients");
  // Joining thousands can outlast the room's heartbeat timeout on a loaded machine: the first ping while they join.
  const joining: Client[] = [];
  const stopPinging = keepAlive(joining);
  const { clients, times } = await connectAll(count, 200, (i) => {
    const client = new Client(wsUrl(server, "room", room, `c${i}`), "room", receipts);
    joining.push(client);
    return client;
  });
  await quiet(() => clients.reduce((sum, c) => sum + c.frames, 0));
  // Senders spread over the crowd, so that in a sharded room most of them are on shards.
  const senders = [0, 1, 2, 3, 4].map((i) => clients[Math.floor((i * count) / 5) + 1]!);
  const ordered = [...senders, ...clients.filter((c) => !senders.includes(c))];
  let messages = 0;
  let sends = 0;
  let shards = 0;
  let calls = 0;
  const stopCounting = server.onLine((line) => {
    const at = line.indexOf('{"event":"fanout"');
    if (at >= 0) {
      const entry = JSON.parse(line.slice(at)) as { room: string; messages: number; sockets: number; shards: number };
      if (entry.room !== room) return;
      messages += entry.messages;
      sends += entry.messages * entry.sockets;
      shards = Math.max(shards, entry.shards);
    } else if (line.includes(`"room":"${room}#`) && line.includes('"handler":"deliver"')) {
      calls++;
    }
  });
  const metrics = await burst(server, ordered, receipts, senders.length, senders.length, n("duration"), n("size"));
  stopCounting();
  stopPinging();
  console.error(
    `  crowd of ${count} on ${shards + 1} objects: p99 ${metrics.p99_ms!.toFixed(1)} ms, ${(sends / messages).toFixed(0)} sends and ${(calls / messages).toFixed(1)} calls per message by the room`,
  );
  for (const client of clients) client.ws.terminate();
  return {
    objects: shards + 1,
    connect_p99_ms: percentile(times, 99),
    ...metrics,
    room_sends_per_message: sends / messages,
    room_calls_per_message: calls / messages,
  };
}

/**
 * A room of token accounts, each with its own object: how many calls those
 * objects get while everyone joins, while 5 of them talk, and per read of
 * `GET /api/me/rooms`, and how long such a read takes for an account in
 * one room and in 20.
 */
async function accounts(server: DevServer): Promise<Result> {
  const count = n("accounts-clients");
  const room = `accounts-${Date.now()}`;
  const exp = Math.floor(Date.now() / 1000) + 3600;
  const tokens = await Promise.all(Array.from({ length: count }, (_, i) => signToken(BENCH_SECRET, { room: "*", name: `a${i}`, sub: `acct-${i}`, exp })));
  let calls = 0;
  let summaries = 0;
  const stopCounting = server.onLine((line) => {
    if (line.includes('"handler":"account.')) calls++;
    if (line.includes('"handler":"summary"')) summaries++;
  });
  const receipts = new Receipts();
  const { clients } = await connectAll(count, 100, (i) => new Client(`${wsUrl(server, "room", room, `a${i}`)}&token=${tokens[i]}`, "room", receipts));
  await until(() => calls >= count, 60_000);
  // Log lines arrive a little after what they tell: count each phase once they stop.
  await quiet(() => calls);
  const joinCalls = calls;
  calls = 0;
  // 5 senders at 1 message/s each, as in the crowd scenario: the room's own ceiling is not what this measures.
  const talk = await burst(server, clients, receipts, 5, 5, n("duration"), n("size"));
  const messages = 5 * n("duration");
  await quiet(() => calls);
  const messageCalls = calls;
  await Promise.all(clients.map((c) => c.close()));

  // A second account list: one account in 20 rooms, each with a message.
  const wide = tokens[0]!;
  for (let k = 0; k < 19; k++) {
    const other = new Client(`${wsUrl(server, "room", `${room}-${k}`, "a0")}&token=${wide}`, "room", receipts);
    await other.ready();
    await other.close();
  }
  const read = async (token: string) => {
    const started = performance.now();
    const response = await fetch(`${server.url}/api/me/rooms`, { headers: { Authorization: `Bearer ${token}` } });
    const { rooms } = (await response.json()) as MyRooms;
    return { ms: performance.now() - started, rooms: rooms.length };
  };
  // One read after another, each by another account: an account may read its list 10 times per 10 s.
  const narrow: Array<{ ms: number; rooms: number }> = [];
  for (const token of tokens.slice(1, 21)) narrow.push(await read(token));
  await quiet(() => calls + summaries);
  calls = 0;
  summaries = 0;
  const wideReads: number[] = [];
  for (let i = 0; i < 10; i++) wideReads.push((await read(wide)).ms);
  await quiet(() => calls + summaries);
  const wideCalls = { account: calls / 10, rooms: summaries / 10 };
  stopCounting();
  return {
    scenario: `accounts-${count}`,
    columns: ["in 1 room", "in 20 rooms"],
    room: {
      account_calls_per_join: joinCalls / count,
      account_calls_per_message: messageCalls / messages,
      delivered_per_s: talk.delivered_per_s!,
      loss: talk.loss!,
      rooms_listed: narrow[0]!.rooms,
      list_read_p50_ms: percentile(sorted(narrow.map((r) => r.ms)), 50),
      list_read_p99_ms: percentile(sorted(narrow.map((r) => r.ms)), 99),
    },
    relay: {
      rooms_listed: 20,
      account_calls_per_list_read: wideCalls.account,
      room_calls_per_list_read: wideCalls.rooms,
      list_read_p50_ms: percentile(sorted(wideReads), 50),
      list_read_p99_ms: percentile(sorted(wideReads), 99),
    },
  };
}

const sorted = (values: number[]) => values.toSorted((a, b) => a - b);

const RUNNERS: Record<string, Runner> = {
  fanout,
  capacity,
  storm: (s, k) => storm(s, k, n("storm-clients"), n("storm-inflight")),
  crowd: (s) => crowd(s),
  idle,
  churn,
};
/** Every scenario's name: those above, and those that run otherwise. */
const SCENARIOS = [...Object.keys(RUNNERS), "hot", "accounts"];

/** Scenarios that run together, and the servers they run against. */
interface Step {
  label: string;
  uses: ServerName[];
  run(servers: Partial<Record<ServerName, DevServer>>): Promise<Result[]>;
}

function step<N extends ServerName>(label: string, uses: N[], run: (servers: Record<N, DevServer>) => Promise<Result[]>): Step {
  return { label, uses, run: (servers) => run(servers as Record<N, DevServer>) };
}

/** The chosen scenarios in the order they run. */
function plan(): Step[] {
  const steps: Step[] = [];
  if (scenarios.includes("fanout")) {
    steps.push(step("fanout", ["room", "relay"], async ({ room, relay }) => [await alternate("fanout", room, relay, n("rounds"), fanout)]));
  }
  if (scenarios.includes("capacity")) {
    // The room's ceiling with batches, against the relay's; and without them, for what batching adds.
    steps.push(
      step("capacity", ["room", "relay"], async ({ room, relay }) => [
        { ...(await alternate("capacity", room, relay, 1, capacity)), third: await capacity(room, "room", false), columns: ["batched", "relay", "unbatched"] },
      ]),
    );
  }
  if (scenarios.includes("hot")) steps.push(step("hot", ["room", "relay"], ({ room, relay }) => hot(room, relay)));
  if (scenarios.includes("storm")) {
    // 200 all at once as well, so that what a join costs can be compared at two sizes.
    steps.push(
      step("storm", ["room", "relay"], async ({ room, relay }) => [
        await alternate("storm-200", room, relay, 1, (s, k) => storm(s, k, 200, 200)),
        await alternate(`storm-${n("storm-clients")}`, room, relay, 1, RUNNERS.storm!),
      ]),
    );
  }
  if (scenarios.includes("crowd")) {
    steps.push(
      step("crowd", ["shardedRoom", "tracedRoom"], async ({ shardedRoom, tracedRoom }) => {
        const sharded = await crowd(shardedRoom);
        const single = await crowd(tracedRoom);
        return [{ scenario: `crowd-${n("crowd-clients")}`, room: sharded, relay: single, columns: ["sharded", "one object"] }];
      }),
    );
  }
  if (scenarios.includes("accounts")) steps.push(step("accounts", ["signingRoom"], async ({ signingRoom }) => [await accounts(signingRoom)]));
  // Churn measures loss, not speed, so the idle scenario (minutes of waiting) runs beside it.
  const idling = scenarios.includes("idle")
    ? step("idle", ["tracedRoom", "tracedRelay"], async ({ tracedRoom, tracedRelay }) => {
        const [room, relay] = await Promise.all([idle(tracedRoom, "room"), idle(tracedRelay, "relay")]);
        return [{ scenario: "idle", room, relay }];
      })
    : undefined;
  const churning = scenarios.includes("churn")
    ? step("churn", ["room", "relay"], async ({ room, relay }) => [await alternate("churn", room, relay, 1, churn)])
    : undefined;
  const together = [idling, churning].filter((s) => s !== undefined);
  if (together.length > 0) {
    steps.push({
      label: together.map((s) => s.label).join(" and "),
      uses: [...new Set(together.flatMap((s) => s.uses))],
      run: async (servers) => (await Promise.all(together.map((s) => s.run(servers)))).flat(),
    });
  }
  return steps;
}

/** Runs the steps, starting each server the first time a step uses it and stopping it after the last step that does. */
async function runSteps(steps: Step[], stateDir: string): Promise<Result[]> {
  const started = new Map<ServerName, Promise<DevServer>>();
  const stop = (name: ServerName) => {
    const server = started.get(name)!;
    started.delete(name);
    return server.then((s) => s.stop());
  };
  const results: Result[] = [];
  try {
    for (const [i, current] of steps.entries()) {
      for (const name of current.uses) if (!started.has(name)) started.set(name, startDevServer({ ...SERVERS[name], stateDir }));
      const servers = Object.fromEntries(await Promise.all(current.uses.map(async (name) => [name, await started.get(name)!] as const)));
      console.error(`${current.label}…`);
      results.push(...(await current.run(servers)));
      const later = new Set(steps.slice(i + 1).flatMap((s) => s.uses));
      await Promise.all([...started.keys()].filter((name) => !later.has(name)).map(stop));
    }
  } finally {
    // After a failure: whatever is up, or still starting, stops too.
    await Promise.allSettled([...started.keys()].map(stop));
  }
  return results;
}

async function main(): Promise<void> {
  const unknown = scenarios.filter((s) => !SCENARIOS.includes(s));
  if (unknown.length > 0) {
    console.error(`unknown scenario: ${unknown.join(", ")} (choose from ${SCENARIOS.join(", ")})`);
    process.exit(2);
  }
  console.error(`bench on ${cpus().length} × ${cpus()[0]?.model ?? "cpu"}, ${new Date().toISOString()}`);
  const results = await runSteps(plan(), String(opts["state-dir"]));

  report(results);
}

await main();
