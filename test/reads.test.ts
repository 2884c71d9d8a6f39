import { env, evictDurableObject, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { signToken } from "../src/auth/grant";
import { DEFAULTS } from "../src/platform/config";
import type { ReceiptsFrame, ServerFrame, User } from "../src/protocol";
import type { Broadcast } from "../src/room/broadcast";
import { MAX_READS } from "../src/room/reads";
import { RECEIPTS_LIMIT, Receipts } from "../src/room/receipts";
import { accountOf, type Entry } from "../src/room/roster";
import { Client, uniqueRoom } from "./support/client";
import { frozenClock, heldTimers } from "./support/clock";

const SECRET = "runtime-test-secret"; // as set for the runtime tests in vitest.config.ts

// The room's batch windows are 50 ms here.
const WINDOW_MS = 50;

const stubOf = (room: string) => env.ROOMS.getByName(room);

function tokenFor(room: string, sub: string | undefined, name: string): Promise<string> {
  return signToken(SECRET, { room, name, ...(sub !== undefined && { sub }), exp: Math.floor(Date.now() / 1000) + 3600 });
}

/**
 * Everything the room sent `client` until its answer to a `who` sent now:
 * the room answers a socket's frames in order, so this includes whatever
 * its earlier frames, or others' that the room handled before, caused.
 */
async function drain(client: Client): Promise<ServerFrame[]> {
  client.send({ type: "who", id: "drain" });
  const frames: ServerFrame[] = [];
  for (;;) {
    const frame = JSON.parse(await client.nextText()) as ServerFrame;
    if (frame.type === "users" && frame.id === "drain") return frames;
    frames.push(frame);
  }
}

/** What `client` was told of read positions (`read` frames) and refusals, since the last drain. */
async function reads(client: Client): Promise<ServerFrame[]> {
  return (await drain(client)).filter((f) => f.type === "read" || f.type === "error");
}

/** Sends `count` messages from `client`, and waits until they are stored. */
let said = 0;
async function say(client: Client, count: number): Promise<void> {
  for (let i = 0; i < count; i++) client.send({ type: "message", text: `message ${i}`, id: `say-${++said}` });
  for (let i = 0; i < count; i++) await client.skipTo("ack");
}

/** Evicts the room as the runtime does when it hibernates: its sockets stay, a new instance takes over. */
async function hibernate(room: string): Promise<void> {
  const stub = stubOf(room);
  const marker = Symbol("before eviction");
  await runInDurableObject(stub, (instance) => {
    Object.assign(instance, { [marker]: true });
  });
  await evictDurableObject(stub, { webSockets: "hibernate" });
  expect(await runInDurableObject(stub, (instance) => marker in instance)).toBe(false);
}

describe("read positions", () => {
  it("only move forward, and never past the room's newest seq; the sender gets no answer", async () => {
    const room = uniqueRoom("monotonic");
    const ann = await Client.join(`/rooms/${room}?name=ann&client=ann-1`);
    const pad = await Client.join(`/rooms/${room}?name=pad&client=ann-1`);
    await say(ann, 3);

    for (const seq of [2, 1, 2, 99, 3]) ann.send({ type: "read", seq, id: `r${seq}` });
    expect(await reads(ann), "what the reader is told").toEqual([]);
    expect(await reads(pad), "what the account's other socket is told").toEqual([
      { type: "read", seq: 2 },
      { type: "read", seq: 3 },
    ]);

    await say(ann, 1);
    ann.send({ type: "read", seq: 3 });
    pad.send({ type: "read", seq: 4 });
    await drain(pad);
    expect(await reads(ann)).toEqual([{ type: "read", seq: 4 }]);
    const later = await Client.connect(`/rooms/${room}?name=ann&client=ann-1`);
    expect((await later.next("welcome")).read).toBe(4);
  });

  it("mean nothing in a room that has no message yet", async () => {
    const room = uniqueRoom("empty");
    const ann = await Client.join(`/rooms/${room}?name=ann&client=ann-1`);
    const pad = await Client.join(`/rooms/${room}?name=pad&client=ann-1`);
    ann.send({ type: "read", seq: 5 });
    await drain(ann);
    expect(await reads(pad)).toEqual([]);
    const later = await Client.connect(`/rooms/${room}?name=ann&client=ann-1`);
    expect((await later.next("welcome")).read).toBe(0);
  });

  it("reach the account's other sockets, by token sub and by client id, and nobody else's", async () => {
    const room = uniqueRoom("sync");
    const phone = await Client.join(`/rooms/${room}?token=${await tokenFor(room, "ann", "ann")}`);
    // The token's sub is the account, whatever client id comes with it.
    const laptop = await Client.join(`/rooms/${room}?token=${await tokenFor(room, "ann", "ann")}&client=laptop`);
    // A client id that spells the same as a sub is another account.
    const namesake = await Client.join(`/rooms/${room}?name=namesake&client=ann`);
    const bob = await Client.join(`/rooms/${room}?name=bob&client=bob-1`);
    const bobTab = await Client.join(`/rooms/${room}?name=bob&client=bob-1`);
    const anon = await Client.join(`/rooms/${room}?name=anon`);
    await say(bob, 5);

    phone.send({ type: "read", seq: 3 });
    await drain(phone);
    bob.send({ type: "read", seq: 5 });
    await drain(bob);
    namesake.send({ type: "read", seq: 1 });
    await drain(namesake);

    expect(await reads(laptop), "ann's laptop").toEqual([{ type: "read", seq: 3 }]);
    expect(await reads(bobTab), "bob's other tab").toEqual([{ type: "read", seq: 5 }]);
    for (const [name, client] of Object.entries({ phone, namesake, bob, anon })) expect(await reads(client), name).toEqual([]);

    // One at a time: the room holds at most 8 sockets here.
    const welcomes: number[] = [];
    for (const query of [`token=${await tokenFor(room, "ann", "ann")}`, "name=bob&client=bob-1", "name=x&client=ann", "name=anon"]) {
      const client = await Client.connect(`/rooms/${room}?${query}`);
      welcomes.push((await client.next("welcome")).read);
      client.close();
      await client.closed();
    }
    expect(welcomes).toEqual([3, 5, 1, 0]);
  });

  it("are refused with account_required to a connection without a token sub or client id", async () => {
    const room = uniqueRoom("anonymous");
    const anon = await Client.join(`/rooms/${room}?name=anon`);
    const named = await Client.join(`/rooms/${room}?token=${await tokenFor(room, undefined, "ann")}`);
    await say(anon, 1);
    for (const client of [anon, named]) {
      client.send({ type: "read", seq: 1, id: "r-1" });
      expect(await reads(client)).toEqual([{ type: "error", id: "r-1", code: "account_required", message: "read positions need a token or ?client=" }]);
    }
  });

  it("are kept across reconnects and hibernation, and welcome each of the account's connections", async () => {
    const room = uniqueRoom("kept");
    const ann = await Client.join(`/rooms/${room}?name=ann&client=ann-1`);
    await say(ann, 2);
    ann.send({ type: "read", seq: 1 });
    await drain(ann);
    ann.close();
    await ann.closed();

    const back = await Client.connect(`/rooms/${room}?name=ann&client=ann-1`);
    expect((await back.next("welcome")).read).toBe(1);
    await back.next("history");
    await hibernate(room);
    const tab = await Client.connect(`/rooms/${room}?name=ann&client=ann-1`);
    expect((await tab.next("welcome")).read, "a welcome after hibernation").toBe(1);
    await tab.next("history");

    // The socket that slept with the room still marks, and reaches the newcomer.
    back.send({ type: "read", seq: 2 });
    await drain(back);
    expect(await reads(tab)).toEqual([{ type: "read", seq: 2 }]);
  });

  it("start afresh in a room stored before they existed, which gains their table when it wakes", async () => {
    const room = uniqueRoom("older");
    const ann = await Client.join(`/rooms/${room}?name=ann&client=ann-1`);
    await say(ann, 2);
    await runInDurableObject(stubOf(room), (_, state) => state.storage.sql.exec("DROP TABLE reads"));
    await hibernate(room);
    const pad = await Client.connect(`/rooms/${room}?name=pad&client=ann-1`);
    expect((await pad.next("welcome")).read).toBe(0);
    await pad.next("history");
    ann.send({ type: "read", seq: 2 });
    await drain(ann);
    expect(await reads(pad)).toEqual([{ type: "read", seq: 2 }]);
  });

  it(`are kept for the MAX_READS (${MAX_READS}) accounts that moved theirs last`, async () => {
    const room = uniqueRoom("many");
    const ann = await Client.join(`/rooms/${room}?name=ann&client=ann-1`);
    const bob = await Client.join(`/rooms/${room}?name=bob&client=bob-1`);
    await say(ann, 3);
    ann.send({ type: "read", seq: 1 });
    await drain(ann);
    // Others read long ago: as many as the room keeps, the oldest first.
    await runInDurableObject(stubOf(room), (_, state) =>
      state.storage.sql.exec(
        `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) INSERT INTO reads (account, seq, at) SELECT 'old-' || i, 1, i FROM n`,
        MAX_READS - 1,
      ),
    );
    // Rows the room did not write itself: a new instance counts them.
    await hibernate(room);
    const kept = () =>
      runInDurableObject(stubOf(room), (_, state) => {
        const sql = state.storage.sql;
        const rows = sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM reads").one().n;
        const oldest = sql.exec<{ account: string }>("SELECT account FROM reads ORDER BY at LIMIT 1").one().account;
        return { rows, oldest };
      });
    expect(await kept()).toEqual({ rows: MAX_READS, oldest: "old-1" });

    // A new position pushes the oldest out; one that moves, nobody.
    bob.send({ type: "read", seq: 3 });
    await drain(bob);
    expect(await kept()).toEqual({ rows: MAX_READS, oldest: "old-2" });
    ann.send({ type: "read", seq: 2 });
    await drain(ann);
    expect(await kept()).toEqual({ rows: MAX_READS, oldest: "old-2" });
    const cat = await Client.join(`/rooms/${room}?name=cat&client=cat-1`);
    cat.send({ type: "read", seq: 3 });
    await drain(cat);
    expect(await kept()).toEqual({ rows: MAX_READS, oldest: "old-3" });
  });

  it("may be marked by someone muted, who writes nothing others read", async () => {
    const room = uniqueRoom("muted");
    const mod = await Client.join(
      `/rooms/${room}?token=${await signToken(SECRET, { room, name: "mod", role: "moderator", exp: Math.floor(Date.now() / 1000) + 3600 })}`,
    );
    const ann = await Client.join(`/rooms/${room}?name=ann&client=ann-1`);
    const pad = await Client.join(`/rooms/${room}?name=pad&client=ann-1`);
    await say(mod, 1);
    mod.send({ type: "mute", user: "2", seconds: 60, id: "m" });
    await mod.skipTo("moderated");
    ann.send({ type: "read", seq: 1 });
    expect(await reads(ann)).toEqual([]);
    expect(await reads(pad)).toEqual([{ type: "read", seq: 1 }]);
  });

  it("take from the socket's frame budget like any frame", async () => {
    frozenClock();
    heldTimers(WINDOW_MS);
    const room = uniqueRoom("budget");
    const ann = await Client.join(`/rooms/${room}?name=ann&client=ann-1`);
    await say(ann, 1);
    // The burst is RATE_LIMIT_PER_10S (20) frames: the message above and these reads spend it.
    for (let i = 0; i < 19; i++) ann.send({ type: "read", seq: 1 });
    ann.send({ type: "message", text: "one too many", id: "late" });
    expect(await ann.next("error")).toMatchObject({ code: "rate_limited" });
  });
});

const user = (id: string, name: string): User => ({ id, name });
const receipts = (...entries: Array<[User, number]>): ReceiptsFrame => ({ type: "receipts", receipts: entries.map(([u, seq]) => ({ user: u, seq })) });

describe("receipts in a small room", () => {
  it("tell everyone whose position moved, once per batch window however many read, each connection of the account", async () => {
    const room = uniqueRoom("receipts");
    const timers = heldTimers(WINDOW_MS);
    const ann = await Client.join(`/rooms/${room}?name=ann&client=ann-1`);
    const bob = await Client.join(`/rooms/${room}?name=bob&client=bob-1`);
    const pad = await Client.join(`/rooms/${room}?name=pad&client=ann-1`);
    const anon = await Client.join(`/rooms/${room}?name=anon`);
    await say(anon, 3);
    await timers.run(stubOf(room));

    ann.send({ type: "read", seq: 2 });
    bob.send({ type: "read", seq: 3 });
    ann.send({ type: "read", seq: 3 });
    for (const client of [ann, bob]) await drain(client);
    expect(timers.delays(), "the one window the three reads opened").toEqual([WINDOW_MS]);
    await timers.run(stubOf(room));
    const expected = receipts([user("1", "ann"), 3], [user("3", "pad"), 3], [user("2", "bob"), 3]);
    for (const client of [ann, bob, pad, anon]) {
      expect((await drain(client)).filter((f) => f.type === "receipts")).toEqual([expected]);
    }
    expect(timers.delays(), "timers once the receipts went").toEqual([]);
  });

  it("tell a newcomer, right after its history, how far those online have read", async () => {
    const room = uniqueRoom("receipts-newcomer");
    heldTimers(WINDOW_MS);
    const ann = await Client.join(`/rooms/${room}?name=ann&client=ann-1`);
    const anon = await Client.join(`/rooms/${room}?name=anon`);
    await say(anon, 2);
    ann.send({ type: "read", seq: 2 });
    await drain(ann);

    const cat = await Client.connect(`/rooms/${room}?name=cat&client=cat-1`);
    await cat.next("welcome");
    await cat.next("history");
    expect(await cat.next("receipts")).toEqual(receipts([user("1", "ann"), 2]));
    const dan = await Client.connect(`/rooms/${room}?name=dan`);
    await dan.next("welcome");
    await dan.next("history");
    expect(await dan.next("receipts")).toEqual(receipts([user("1", "ann"), 2]));
  });

  it(`go to nobody above RECEIPTS_LIMIT (${RECEIPTS_LIMIT}) people, while the account's other sockets still learn its position`, async () => {
    const timers = heldTimers(WINDOW_MS);
    const stub = stubOf(uniqueRoom("receipts-crowd"));
    const person = (i: number): Entry => ({ id: String(i + 1), name: `u${i}`, address: `a${i}`, joinedAt: 0, shard: 0, client: `c${i}` });
    const everyone = receipts([user("1", "u0"), 7], [user("2", "u1"), 7]);
    const mine = { to: ["2"], frame: { type: "read", seq: 7 } };

    /** A room of `online` people whose first two are one account's, which moves to 7; `meanwhile` happens before the window ends. */
    async function crowd(online: number, meanwhile = (_: Entry[]) => {}) {
      const entries = Array.from({ length: online }, (_, i) => person(i));
      entries[1]!.client = "c0";
      const sent: Array<{ to: string[] | "everyone"; frame: ServerFrame }> = [];
      const broadcast: Pick<Broadcast, "toSome" | "toEveryone"> = {
        toSome: (to, frame) => sent.push({ to: to.map((e) => e.id), frame }),
        toEveryone: (frame) => sent.push({ to: "everyone", frame }),
      };
      const roster = {
        get size() {
          return entries.length;
        },
        all: () => entries,
        ofAccount: (account: string) => entries.filter((e) => accountOf(e) === account),
      };
      const positions = { positions: (accounts: string[]) => new Map(accounts.filter((a) => a === "c0").map((a) => [a, 7])) };
      const news = new Receipts({ name: "crowd", config: DEFAULTS, roster, reads: positions, broadcast });
      news.moved("1", "c0", 7);
      const windows = timers.delays().length;
      meanwhile(entries);
      await timers.run(stub);
      return { sent, windows, current: news.current() };
    }

    expect(await crowd(RECEIPTS_LIMIT), `${RECEIPTS_LIMIT} online`).toEqual({
      sent: [mine, { to: "everyone", frame: everyone }],
      windows: 1,
      current: everyone,
    });
    expect(await crowd(RECEIPTS_LIMIT + 1), `${RECEIPTS_LIMIT + 1} online`).toEqual({ sent: [mine], windows: 0, current: null });
    const grown = await crowd(RECEIPTS_LIMIT, (entries) => entries.push(person(RECEIPTS_LIMIT)));
    expect(grown, "one more within the window").toEqual({ sent: [mine], windows: 1, current: null });
  });
});
