import { env, evictDurableObject, runInDurableObject } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { signToken } from "../src/auth/grant";
import { MAX_QUERY_CHARS, type SearchFrame, type SearchPage } from "../src/protocol";
import { History } from "../src/room/history";
import { INDEX_BATCH } from "../src/room/search";
import { RoomStore } from "../src/room/store";
import { caller, Client, nextAddress, uniqueRoom } from "./support/client";
import { fastClock, frozenClock, seededRandom } from "./support/clock";
import { waitFor } from "./support/frames";

const SECRET = "runtime-test-secret"; // as set for the runtime tests in vitest.config.ts
const inAnHour = () => Math.floor(Date.now() / 1000) + 3600;
const stubOf = (room: string) => env.ROOMS.getByName(room);

function searchOver(room: string, query: string, address = nextAddress(), headers: Record<string, string> = {}): Promise<Response> {
  return exports.default.fetch(`http://chat.test/api/rooms/${room}/search${query}`, { headers: { "CF-Connecting-IP": address, ...headers } });
}

/** A search over HTTP that must succeed. */
async function found(room: string, q: string, more = ""): Promise<SearchPage> {
  const response = await searchOver(room, `?q=${encodeURIComponent(q)}${more}`);
  expect(response.status, `searching ${q}: ${response.status}`).toBe(200);
  return response.json<SearchPage>();
}

const seqsOf = (page: Pick<SearchPage, "results">) => page.results.map((r) => r.seq);

/** What the index itself holds for `q`, read without the messages table: a row the index still has for a message gone or changed shows here. */
function indexed(room: string, q: string): Promise<number[]> {
  return runInDurableObject(stubOf(room), (_, state) =>
    state.storage.sql
      .exec<{ rowid: number }>("SELECT rowid FROM messages_fts WHERE messages_fts MATCH ? ORDER BY rowid", q)
      .toArray()
      .map((r) => r.rowid),
  );
}

async function say(client: Client, text: string, id: string): Promise<number> {
  client.send({ type: "message", text, id });
  return (await client.skipTo("ack")).seq;
}

async function searchOn(client: Client, frame: { q: string; before?: number; id?: string }): Promise<SearchFrame> {
  client.send({ type: "search", ...frame });
  return client.skipTo("search");
}

describe("search", () => {
  it("finds messages by word, prefix, phrase and boolean query, without regard to case or accents, answering the sender only", async () => {
    const room = uniqueRoom("find");
    const ann = await Client.join(`/rooms/${room}?name=ann`);
    const bob = await Client.join(`/rooms/${room}?name=bob`);
    const texts = ["Lunch at noon?", "lunchtime is over", "the café opens at noon", "Noon lunch sounds good", "nothing to do with it"];
    const seqs: number[] = [];
    for (const [i, text] of texts.entries()) seqs.push(await say(ann, text, `m${i}`));
    const [atNoon, lunchtime, cafe, noonLunch] = seqs as [number, number, number, number];

    const lunch = await searchOn(ann, { q: " lunch ", id: "s1" });
    expect(lunch).toEqual({
      type: "search",
      id: "s1",
      q: "lunch",
      results: [
        { seq: noonLunch, user: { id: "1", name: "ann" }, text: "Noon lunch sounds good", at: expect.any(Number), snippet: "Noon [lunch] sounds good" },
        { seq: atNoon, user: { id: "1", name: "ann" }, text: "Lunch at noon?", at: expect.any(Number), snippet: "[Lunch] at noon?" },
      ],
      more: false,
    });
    expect(seqsOf(await searchOn(ann, { q: "lunc*" }))).toEqual([noonLunch, lunchtime, atNoon]);
    expect(seqsOf(await searchOn(ann, { q: '"noon lunch"' }))).toEqual([noonLunch]);
    expect(seqsOf(await searchOn(ann, { q: "noon AND lunch" }))).toEqual([noonLunch, atNoon]);
    expect(seqsOf(await searchOn(ann, { q: "noon NOT lunch" }))).toEqual([cafe]);
    expect(seqsOf(await searchOn(ann, { q: "cafe OR lunchtime" }))).toEqual([cafe, lunchtime]);
    expect((await searchOn(ann, { q: "dinner" })).results).toEqual([]);
    expect((await found(room, "cafe")).results).toMatchObject([{ seq: cafe, snippet: "the [café] opens at noon" }]);

    // Nobody else hears of it, though bob hears the message after.
    await say(ann, "done searching", "m9");
    await waitFor(
      () => bob.frames.some((f) => f.includes("done searching")),
      () => `bob's copy of the last message; he has ${bob.frames.join(" | ")}`,
    );
    expect(bob.frames.filter((f) => f.includes('"type":"search"'))).toEqual([]);
  });

  it("answers newest first in pages: 20 on a socket, then the rest before the last seq, and limit over HTTP", async () => {
    fastClock(); // 50 messages and a dozen searches, far past the rate limits tested below
    const room = uniqueRoom("pages");
    const ann = await Client.join(`/rooms/${room}?name=ann`);
    const matching: number[] = [];
    for (let i = 0; i < 50; i++) {
      const seq = await say(ann, i % 5 === 4 ? `filler ${i}` : `report number ${i}`, `m${i}`);
      if (i % 5 !== 4) matching.push(seq);
    }
    const newest = matching.toReversed();
    expect(newest).toHaveLength(40);

    const first = await searchOn(ann, { q: "report" });
    expect(seqsOf(first)).toEqual(newest.slice(0, 20));
    expect(first.more).toBe(true);
    const second = await searchOn(ann, { q: "report", before: first.results.at(-1)!.seq });
    expect(seqsOf(second)).toEqual(newest.slice(20, 40));
    // Exactly a page left: the room looked one further and found nothing.
    expect(second.more).toBe(false);

    const page = await found(room, "report", "&limit=7");
    expect(seqsOf(page)).toEqual(newest.slice(0, 7));
    expect(page.more).toBe(true);
    const next = await found(room, "report", `&limit=30&before=${page.results.at(-1)!.seq}`);
    expect(seqsOf(next)).toEqual(newest.slice(7, 37));
    expect(next.more).toBe(true);
    expect(seqsOf(await found(room, "report", "&limit=1000"))).toEqual(newest);
    expect(seqsOf(await found(room, "report", `&before=${newest[38]!}`))).toEqual([newest[39]]);
  });

  it("caps an HTTP page at 100 results", async () => {
    const room = uniqueRoom("cap");
    await Client.join(`/rooms/${room}?name=ann`);
    // Stored straight into SQLite, as a busy room would have them; the triggers index them as they go in.
    await runInDurableObject(stubOf(room), (_, state) => {
      for (let seq = 1; seq <= 120; seq++) {
        state.storage.sql.exec("INSERT INTO messages (seq, user_id, user_name, text, at, sender) VALUES (?, '1', 'ann', ?, 0, '1')", seq, `ping ${seq}`);
      }
    });
    const page = await found(room, "ping", "&limit=500");
    expect(page.results).toHaveLength(100);
    expect(page.more).toBe(true);
    expect(page.results[0]!.seq).toBe(120);
  });

  it("finds an edited message by its new text only, and a deleted one not at all", async () => {
    const room = uniqueRoom("changed");
    const ann = await Client.join(`/rooms/${room}?name=ann`);
    const edited = await say(ann, "meet at the harbour", "m1");
    const deleted = await say(ann, "secret harbour plan", "m2");
    const kept = await say(ann, "harbour lights", "m3");

    ann.send({ type: "edit", seq: edited, text: "meet at the station", id: "e1" });
    await ann.skipTo("ack");
    ann.send({ type: "delete", seq: deleted, id: "d1" });
    await ann.skipTo("ack");

    expect(seqsOf(await searchOn(ann, { q: "harbour" }))).toEqual([kept]);
    expect((await searchOn(ann, { q: "station" })).results).toMatchObject([{ seq: edited, text: "meet at the station", snippet: "meet at the [station]" }]);
    expect((await searchOn(ann, { q: "secret OR plan" })).results).toEqual([]);
    // The index itself, not only the answer, has let go of the old words.
    expect(await indexed(room, "harbour")).toEqual([kept]);
    expect(await indexed(room, "secret")).toEqual([]);
  });

  it("lets trimmed messages leave the index with their rows", async () => {
    const room = uniqueRoom("trimmed");
    const ann = await Client.join(`/rooms/${room}?name=ann`);
    const seqs: number[] = [];
    for (let i = 0; i < 6; i++) seqs.push(await say(ann, `tide table ${i}`, `m${i}`));
    await runInDurableObject(stubOf(room), (_, state) => new History(state.storage, new RoomStore(state.storage.sql, [History.SCHEMA])).trim(2, 10));
    expect(seqsOf(await searchOn(ann, { q: "tide" }))).toEqual(seqs.slice(4).toReversed());
    expect(await indexed(room, "tide")).toEqual(seqs.slice(4));
  });

  it("keeps its index through hibernation", async () => {
    const room = uniqueRoom("hibernating");
    const ann = await Client.join(`/rooms/${room}?name=ann`);
    const seq = await say(ann, "remember the alamo", "m1");
    // More than a wake would index, were it to take the room for one that never had an index.
    await runInDurableObject(stubOf(room), (_, state) => {
      for (let i = 1; i <= INDEX_BATCH; i++) {
        state.storage.sql.exec("INSERT INTO messages (seq, user_id, user_name, text, at, sender) VALUES (?, '1', 'ann', 'later', 0, '1')", seq + i);
      }
    });
    await evictDurableObject(stubOf(room), { webSockets: "hibernate" });
    expect(await searchOn(ann, { q: "alamo", id: "after" })).toMatchObject({ id: "after", results: [{ seq }], more: false });
    expect((await searchOn(ann, { q: "alamo" })).partial).toBeUndefined();
  });

  it("indexes a room stored before search existed over its next wakes, a batch each, and says partial until done", async () => {
    const room = uniqueRoom("older");
    const stub = stubOf(room);
    const mod = await signToken(SECRET, { room, name: "mod", role: "moderator", exp: inAnHour() });
    const ann = { id: "1", name: "ann" };
    // A room as an older version left it, with no index: message i is seq i,
    // every hundredth says "centennial", and an edit of 1591 is seq 1601.
    await runInDurableObject(stub, (_, state) => {
      const history = new History(state.storage, new RoomStore(state.storage.sql, [History.SCHEMA]));
      for (let i = 1; i <= 3 * INDEX_BATCH + 100; i++) {
        history.append({ user: ann, text: `old note ${i}${i % 100 === 0 ? " centennial" : ""}`, at: i, sender: "ann" }, 10_000);
      }
      // An edit's own row holds its text too, and must never be found.
      history.append({ user: ann, text: "old note ninety", at: 0, sender: "ann", change: { kind: "edit", target: 1591 } }, 10_000);
    });
    await evictDurableObject(stub);

    // The first wake makes the index and takes the newest batch, 1600 down to 1101.
    const first = await found(room, "centennial");
    expect(first).toMatchObject({ partial: true, more: false });
    expect(seqsOf(first)).toEqual([1600, 1500, 1400, 1300, 1200]);
    expect(await indexed(room, "old")).toHaveLength(INDEX_BATCH);
    expect(seqsOf(await found(room, "ninety"))).toEqual([1591]);

    // Meanwhile a new message is indexed at once, and messages not indexed yet
    // are edited, deleted and trimmed. (Each of these two writes also trims the
    // oldest two: the room's history is over its limit.)
    const post = await exports.default.fetch(`http://chat.test/api/rooms/${room}/messages`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ name: "bot", text: "a new centennial" }),
    });
    expect(await post.json()).toEqual({ seq: 1602, duplicate: false });
    const deleted = await exports.default.fetch(`http://chat.test/api/rooms/${room}/moderation`, {
      method: "POST",
      headers: { Authorization: `Bearer ${mod}`, "Content-Type": "application/json" },
      body: JSON.stringify({ type: "delete", seq: 700 }),
    });
    expect(deleted.status).toBe(200);
    expect(seqsOf(await found(room, "centennial"))).toEqual([1602, 1600, 1500, 1400, 1300, 1200]);
    await runInDurableObject(stub, (_, state) => {
      const { sql } = state.storage;
      // Edited twice while not indexed: neither edit may take words out of the index that it never had.
      for (const text of ["old note revised", "old note rewritten"]) sql.exec("UPDATE messages SET text = ?, edited_at = 1 WHERE seq = 530", text);
      // More rows than the index holds yet: had each taken its words out, the index's count of its rows
      // would fall below zero, and it would report itself corrupt from then on.
      const history = new History(state.storage, new RoomStore(sql, [History.SCHEMA]));
      history.trim(history.size - 520, 520);
    });
    await evictDurableObject(stub);

    // The next batch, 1100 down to 601, without 700.
    const second = await found(room, "centennial");
    expect(second.partial).toBe(true);
    expect(seqsOf(second)).toEqual([1602, 1600, 1500, 1400, 1300, 1200, 1100, 1000, 900, 800]);
    await evictDurableObject(stub);

    // The rest, 600 down to 525, above what was trimmed.
    const done = await found(room, "centennial");
    expect(done.partial).toBeUndefined();
    expect(seqsOf(done)).toEqual([1602, 1600, 1500, 1400, 1300, 1200, 1100, 1000, 900, 800, 600]);
    expect(seqsOf(await found(room, "rewritten"))).toEqual([530]);

    // And the index agrees with the messages, word by word: nothing missing, nothing twice, nothing stale.
    const words = ["old", "note", "centennial", "revised", "rewritten", "ninety", "new"];
    const truth = await runInDurableObject(stub, (_, state) =>
      words.map((word) =>
        state.storage.sql
          .exec<{ seq: number }>("SELECT seq FROM messages WHERE kind IS NULL AND (' ' || text || ' ') LIKE ? ORDER BY seq", `% ${word} %`)
          .toArray()
          .map((r) => r.seq),
      ),
    );
    for (const [i, word] of words.entries()) expect(await indexed(room, word), word).toEqual(truth[i]);
    expect(truth[0]!.length).toBeGreaterThan(2 * INDEX_BATCH);
  });

  it("refuses a query FTS5 cannot read with bad_query, in words, on a socket and over HTTP, and goes on answering", async () => {
    const room = uniqueRoom("bad-query");
    const ann = await Client.join(`/rooms/${room}?name=ann`);
    await say(ann, "something to find", "m1");
    for (const q of ['"unclosed', "AND", "*", "nope:word", "(a OR", "NEAR(a b"]) {
      ann.send({ type: "search", q, id: "bad" });
      const error = await ann.skipTo("error");
      expect(error, q).toMatchObject({ type: "error", id: "bad", code: "bad_query" });
      expect(error.message, q).toMatch(/could not be read .*double quotes/);
      const response = await searchOver(room, `?q=${encodeURIComponent(q)}`);
      expect(response.status, q).toBe(400);
      expect(await response.json(), q).toMatchObject({ code: "bad_query", message: expect.stringContaining("could not be read") });
    }
    // Quoted, the same words are fine.
    expect((await searchOn(ann, { q: '"AND" OR "*"' })).results).toEqual([]);
    expect((await searchOn(ann, { q: "find" })).results).toHaveLength(1);
    expect(ann.closeEvent).toBeNull();
  });

  it("refuses a missing, empty or overlong query, a bad before and a bad limit before it reaches the room", async () => {
    const room = uniqueRoom("bad-params");
    const ann = await Client.join(`/rooms/${room}?name=ann`);
    for (const frame of [{}, { q: "" }, { q: "   " }, { q: 7 }, { q: "x".repeat(MAX_QUERY_CHARS + 1) }]) {
      ann.send({ type: "search", ...frame, id: "p" });
      expect(await ann.skipTo("error"), JSON.stringify(frame)).toMatchObject({ id: "p", code: "bad_query" });
    }
    for (const before of [0, -1, 1.5, "3", null]) {
      ann.send({ type: "search", q: "x", before, id: "b" });
      expect(await ann.skipTo("error"), String(before)).toMatchObject({ id: "b", code: "bad_message" });
    }
    expect((await searchOn(ann, { q: "é".repeat(MAX_QUERY_CHARS) })).results).toEqual([]);

    for (const [query, code] of [
      ["", "bad_query"],
      ["?q=", "bad_query"],
      ["?q=%20%20", "bad_query"],
      [`?q=${"x".repeat(MAX_QUERY_CHARS + 1)}`, "bad_query"],
      ["?q=x&before=0", "bad_before"],
      ["?q=x&before=-2", "bad_before"],
      ["?q=x&before=abc", "bad_before"],
      ["?q=x&limit=0", "bad_limit"],
      ["?q=x&limit=ten", "bad_limit"],
    ] as const) {
      const response = await searchOver(room, query);
      expect(response.status, query).toBe(400);
      expect(await response.json(), query).toMatchObject({ code, message: expect.any(String) });
    }
    const post = await exports.default.fetch(`http://chat.test/api/rooms/${room}/search?q=x`, { method: "POST" });
    expect(post.status).toBe(405);
  });

  it("answers every query, however malformed, with results or bad_query, never an error", async () => {
    const room = uniqueRoom("query-fuzz");
    const ann = await Client.join(`/rooms/${room}?name=ann`);
    await say(ann, "alpha beta gamma", "m1");
    const next = seededRandom(24);
    // FTS5's operators, some words and what lies between them; spaces twice as often.
    const pieces = [...`alpha|be|*|"|(|)|:|^|+|-|AND|OR|NOT|NEAR|,|{|}|text|'|.|\\|é|🍕`.split("|"), " ", " "];
    const queries = Array.from({ length: 500 }, () =>
      Array.from({ length: 1 + Math.floor(next() * 8) }, () => pieces[Math.floor(next() * pieces.length)]!)
        .join("")
        .trim(),
    ).filter((q) => q !== "");
    const answers = await runInDurableObject(stubOf(room), (room) => queries.map((q) => room.search(q, null, 5, caller())));
    const refused = answers.flatMap((answer) => ("refusal" in answer ? [answer.refusal.code] : []));
    expect(new Set(refused)).toEqual(new Set(["bad_query"]));
    expect(refused.length).toBeGreaterThan(50);
    expect(answers.length - refused.length).toBeGreaterThan(50);
  });

  it("has its own budget per address, shared by its sockets and HTTP: 429 and rate_limited beyond it, reads unaffected", async () => {
    const clock = frozenClock();
    const room = uniqueRoom("budget");
    const address = "203.0.113.60";
    const ann = await Client.join(`/rooms/${room}?name=ann`, address);
    await say(ann, "budget item", "m1");
    expect((await searchOn(ann, { q: "budget" })).results).toHaveLength(1);
    for (let i = 1; i < 20; i++) expect((await searchOver(room, "?q=budget", address)).status, `search ${i + 1}`).toBe(200);

    const refused = await searchOver(room, "?q=budget", address);
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get("Retry-After"))).toBeGreaterThanOrEqual(1);
    expect(await refused.json()).toMatchObject({ code: "rate_limited", message: expect.stringContaining("searches"), retryAfterMs: expect.any(Number) });
    ann.send({ type: "search", q: "budget", id: "over" });
    expect(await ann.skipTo("error")).toMatchObject({ id: "over", code: "rate_limited", retryAfterMs: expect.any(Number) });
    // Reading history, and another address's searches, take from other budgets.
    const read = await exports.default.fetch(`http://chat.test/api/rooms/${room}/messages`, { headers: { "CF-Connecting-IP": address } });
    expect(read.status).toBe(200);
    expect((await searchOver(room, "?q=budget")).status).toBe(200);

    clock.advance(10_000);
    expect((await searchOn(ann, { q: "budget" })).results).toHaveLength(1);
    expect((await searchOver(room, "?q=budget", address)).status).toBe(200);
  });

  it("is refused to someone banned, on any path, and allowed to someone muted, who may still read", async () => {
    const room = uniqueRoom("banned");
    const mod = await Client.join(`/rooms/${room}?token=${await signToken(SECRET, { room, name: "mod", role: "moderator", exp: inAnHour() })}`);
    const zed = await Client.join(`/rooms/${room}?name=zed&client=zed-1`);
    const mia = await Client.join(`/rooms/${room}?name=mia&client=mia-1`);
    await say(mod, "the plan", "m1");
    mod.send({ type: "mute", user: "3", seconds: 600 });
    await mod.skipTo("moderated");
    expect((await searchOn(mia, { q: "plan" })).results).toHaveLength(1);

    mod.send({ type: "ban", user: "2", seconds: 600 });
    await mod.skipTo("moderated");
    await zed.closed();
    const refused = await searchOver(room, "?q=plan&client=zed-1");
    expect(refused.status).toBe(403);
    expect(await refused.json()).toMatchObject({ code: "banned", until: expect.any(Number) });
    expect((await searchOver(room, "?q=plan&client=someone-else")).status).toBe(200);
  });

  it("in a private room needs a token valid for it, as reading does", async () => {
    const room = uniqueRoom("private-search");
    const token = await signToken(SECRET, { room, name: "ann", exp: inAnHour() });
    const ann = await Client.join(`/rooms/${room}?token=${token}`);
    await say(ann, "between us", "m1");
    const without = await searchOver(room, "?q=between");
    expect(without.status).toBe(401);
    expect(await without.json()).toMatchObject({ code: "token_required" });
    const otherRoom = await signToken(SECRET, { room: "private-elsewhere", name: "ann", exp: inAnHour() });
    expect((await searchOver(room, "?q=between", undefined, { Authorization: `Bearer ${otherRoom}` })).status).toBe(403);
    const allowed = await searchOver(room, "?q=between", undefined, { Authorization: `Bearer ${token}` });
    expect(allowed.status).toBe(200);
    expect(seqsOf(await allowed.json<SearchPage>())).toEqual([1]);
  });

  it("renders results as lines in the text format", async () => {
    const room = uniqueRoom("text");
    const ann = await Client.join(`/rooms/${room}?name=ann`);
    await say(ann, "line one\nmentions kettle", "m1");
    const tex = await Client.join(`/rooms/${room}?name=tex&format=text`);
    tex.send(JSON.stringify({ type: "search", q: "kettle" }));
    let line = await tex.nextText();
    while (!line.startsWith("Found")) line = await tex.nextText();
    expect(line).toBe('Found for "kettle":\n  #1 ann: line one mentions [kettle]');
  });
});
