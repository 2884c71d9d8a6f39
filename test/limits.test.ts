import { env, evictDurableObject } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import { exceedsBytes, fullBucket, take } from "../src/protocol";
import { Buckets } from "../src/sockets/buckets";
import { Client, uniqueRoom } from "./support/client";
import { frozenClock } from "./support/clock";

describe("the token bucket", () => {
  it("lets a burst of the limit through, then refills at the limit per 10 s", () => {
    const bucket = fullBucket(20, 0);
    for (let i = 0; i < 20; i++) expect(take(bucket, 20, 0)).toEqual({ ok: true });
    expect(take(bucket, 20, 0)).toEqual({ ok: false, flood: false, retryAfterMs: 1000 });
    expect(take(bucket, 20, 999)).toMatchObject({ ok: false });
    // Refused frames cost a token too, so the wait grew.
    expect(take(bucket, 20, 2500)).toEqual({ ok: true });
  });

  it("calls it a flood once about five times the limit came within ten seconds", () => {
    const bucket = fullBucket(20, 0);
    const early = Array.from({ length: 90 }, (_, i) => take(bucket, 20, i * 100));
    expect(early.filter((v) => !v.ok)).not.toHaveLength(0);
    expect(early.some((v) => !v.ok && v.flood)).toBe(false);
    const late = Array.from({ length: 11 }, (_, i) => take(bucket, 20, (90 + i) * 100));
    expect(late.at(-1)).toMatchObject({ ok: false, flood: true });
  });

  it("never limits when the limit is 0", () => {
    const bucket = fullBucket(0, 0);
    for (let i = 0; i < 1000; i++) expect(take(bucket, 0, 0)).toEqual({ ok: true });
  });

  it("keeps a bounded number of keys", () => {
    const buckets = new Buckets(100);
    for (let i = 0; i < 1000; i++) buckets.take(`10.0.0.${i}`, 20, i);
    expect(buckets.size).toBeLessThanOrEqual(100);
  });

  it("does bounded work per take however many keys it holds, even when every one is still refilling", () => {
    const buckets = new Buckets(1000);
    for (let i = 0; i < 1000; i++) buckets.take(`a${i}`, 20, 0);
    // Every way to walk a Map or a Set steps one of these two iterators or
    // calls forEach, for-of and spreads included: a full scan of any of them
    // shows up here, however it is written.
    let steps = 0;
    for (const collection of [new Map(), new Set()]) {
      const iteratorPrototype = Object.getPrototypeOf(collection.values()) as { next(): IteratorResult<unknown> };
      const next = iteratorPrototype.next;
      vi.spyOn(iteratorPrototype, "next").mockImplementation(function (this: unknown) {
        steps++;
        return next.call(this);
      });
      const prototype = Object.getPrototypeOf(collection) as { forEach(callback: (...args: unknown[]) => void, thisArg?: unknown): void };
      const forEach = prototype.forEach;
      vi.spyOn(prototype, "forEach").mockImplementation(function (this: unknown, callback, thisArg) {
        forEach.call(this, (...args: unknown[]) => {
          steps++;
          return callback.apply(thisArg, args);
        });
      });
    }
    for (let i = 0; i < 1000; i++) buckets.take(`b${i}`, 20, 1);
    vi.restoreAllMocks();
    expect(steps, "steps through Maps and Sets in 1000 takes").toBeLessThanOrEqual(2 * 1000);
  });

  it("forgets the least recently used address first, not one that keeps sending", () => {
    const buckets = new Buckets(3);
    for (let i = 0; i < 20; i++) buckets.take("busy", 20, 0);
    buckets.take("x", 20, 0);
    buckets.take("busy", 20, 0);
    buckets.take("y", 20, 0);
    buckets.take("z", 20, 0);
    // "busy" was used after "x", so "x" went; "busy" still owes its 21 frames.
    expect(buckets.take("busy", 20, 0)).toMatchObject({ ok: false });
  });

  it("measures frames in UTF-8 bytes", () => {
    expect(exceedsBytes("a".repeat(16), 16)).toBe(false);
    expect(exceedsBytes("a".repeat(17), 16)).toBe(true);
    expect(exceedsBytes("é".repeat(8), 16)).toBe(false);
    expect(exceedsBytes("é".repeat(9), 16)).toBe(true);
    expect(exceedsBytes("😀".repeat(4), 16)).toBe(false);
    expect(exceedsBytes("😀".repeat(5), 16)).toBe(true);
  });
});

describe("sizes", () => {
  it("refuses a frame over MAX_FRAME_BYTES unread, text or binary, and keeps the socket", async () => {
    const ann = await Client.join(`/rooms/${uniqueRoom("big")}?name=ann`);
    ann.send(`{"type":"message","text":"${"x".repeat(16 * 1024)}"}`);
    expect(await ann.next("error")).toMatchObject({ code: "too_large", message: "frames are at most 16384 bytes" });
    ann.send(new Uint8Array(16 * 1024 + 1).buffer);
    expect(await ann.next("error")).toMatchObject({ code: "too_large" });
    ann.send("still here");
    expect(await ann.next("message")).toMatchObject({ text: "still here" });
  });

  it("takes text of MAX_MESSAGE_CHARS characters, counted in code points, and no more", async () => {
    const ann = await Client.join(`/rooms/${uniqueRoom("long")}?name=ann`);
    const longest = "😀".repeat(2000);
    ann.send({ type: "message", text: longest });
    expect((await ann.next("message")).text).toBe(longest);
    ann.send(`  ${"a".repeat(2001)}  `);
    expect(await ann.next("error")).toMatchObject({ code: "too_long", message: "messages are at most 2000 characters" });
  });

  it("refuses control characters and broken Unicode in text, and keeps tabs and line breaks", async () => {
    const ann = await Client.join(`/rooms/${uniqueRoom("controls")}?name=ann`);
    for (const text of ["\u001b[2J\u001b[Hgotcha", "nul\u0000byte", "lone \ud800 surrogate", "c1 \u009b control"]) {
      ann.send({ type: "message", text });
      expect(await ann.next("error"), JSON.stringify(text)).toMatchObject({ code: "bad_message" });
    }
    ann.send({ type: "message", text: "line one\n\tline two" });
    expect(await ann.next("message")).toMatchObject({ text: "line one\n\tline two" });
  });
});

describe("rename", () => {
  it("answers the renamer at once and broadcasts the new name, in both formats, and it survives hibernation", async () => {
    const room = uniqueRoom("rename");
    const ann = await Client.join(`/rooms/${room}?name=ann`);
    const tex = await Client.join(`/rooms/${room}?name=tex&format=text`);
    await ann.presence({ joined: 1 });
    ann.send({ type: "rename", name: "  annie  " });
    expect(await ann.next("renamed")).toEqual({ type: "renamed", user: { id: "1", name: "annie" }, from: "ann" });
    expect(await ann.next("presence")).toMatchObject({ renamed: [{ user: { id: "1", name: "annie" }, from: "ann" }] });
    expect(await tex.nextText()).toBe("ann is now known as annie.");
    tex.send({ type: "rename", name: "tex2" });
    expect(await tex.nextText()).toBe("You are now known as tex2.");
    expect(await tex.nextText()).toBe("tex is now known as tex2.");
    await ann.next("presence");

    await evictDurableObject(env.ROOMS.getByName(room), { webSockets: "hibernate" });
    ann.send("hello");
    expect(await tex.nextText()).toBe("annie: hello");
    tex.send({ type: "who" });
    expect(await tex.nextText()).toBe("Online: annie, tex2");
  });

  it.each([
    ["an empty name", ""],
    ["a name of 33 characters", "n".repeat(33)],
    ["a bidi override", "evil\u202egnp.exe"],
    ["a control character", "a\u0007"],
    ["no name at all", undefined],
  ])("refuses %s with bad_name", async (_, name) => {
    const ann = await Client.join(`/rooms/${uniqueRoom("bad-rename")}?name=ann`);
    ann.send({ type: "rename", name });
    expect(await ann.next("error")).toMatchObject({ code: "bad_name" });
    ann.send({ type: "who" });
    expect((await ann.next("users")).users).toEqual([{ id: "1", name: "ann" }]);
  });
});

describe("the per-socket rate limit", () => {
  it("refuses frames over the limit with retryAfterMs, stores none of them, and refills with time", async () => {
    const clock = frozenClock();
    const room = uniqueRoom("rate");
    const ann = await Client.join(`/rooms/${room}?name=ann`);
    const bob = await Client.join(`/rooms/${room}?name=bob`);
    await ann.presence({ joined: 1 });
    for (let i = 0; i < 20; i++) ann.send(`m${i}`);
    ann.send("one too many");
    for (let i = 0; i < 20; i++) expect(await ann.next("message")).toMatchObject({ text: `m${i}` });
    expect(await ann.next("error")).toEqual({ type: "error", code: "rate_limited", message: "too many frames; slow down", retryAfterMs: 1000 });

    clock.advance(1000);
    ann.send("after waiting");
    expect(await ann.next("message")).toMatchObject({ seq: 21, text: "after waiting" });
    for (let i = 0; i < 20; i++) await bob.next("message");
    expect(await bob.next("message")).toMatchObject({ text: "after waiting" });
  });

  it("is not refilled by hibernation", async () => {
    frozenClock();
    const room = uniqueRoom("rate-hibernate");
    const ann = await Client.join(`/rooms/${room}?name=ann`);
    for (let i = 0; i < 20; i++) ann.send({ type: "who" });
    for (let i = 0; i < 20; i++) await ann.next("users");
    await evictDurableObject(env.ROOMS.getByName(room), { webSockets: "hibernate" });
    ann.send("hello");
    expect(await ann.next("error")).toMatchObject({ code: "rate_limited" });
  });

  it("closes a flooder with 1008 while everyone else's messages all get through", async () => {
    const clock = frozenClock();
    const room = uniqueRoom("flood");
    const flooder = await Client.join(`/rooms/${room}?name=flooder`);
    const ann = await Client.join(`/rooms/${room}?name=ann`);
    const bob = await Client.join(`/rooms/${room}?name=bob`);

    // Ten times the limit in ten seconds, with the others talking in between.
    for (let i = 0; i < 200; i++) {
      flooder.send(`spam ${i}`);
      if (i % 20 === 0) {
        ann.send(`ann ${i / 20}`);
        bob.send(`bob ${i / 20}`);
      }
      clock.advance(50);
    }

    expect((await flooder.closed()).code).toBe(1008);
    const seen: string[] = [];
    while (seen.length < 20) {
      const frame = await ann.skipTo("message");
      if (!frame.text.startsWith("spam")) seen.push(frame.text);
    }
    expect(seen.filter((t) => t.startsWith("ann"))).toEqual(Array.from({ length: 10 }, (_, i) => `ann ${i}`));
    expect(seen.filter((t) => t.startsWith("bob"))).toEqual(Array.from({ length: 10 }, (_, i) => `bob ${i}`));
    expect(await ann.skipTo("presence")).toMatchObject({ left: [{ user: { name: "flooder" }, reason: "flood" }] });

    const errors = flooder.frames.filter((f) => f.includes('"rate_limited"'));
    expect(errors.length).toBeGreaterThan(0);
    const spam = flooder.frames.filter((f) => f.includes('"spam '));
    expect(spam.length).toBeLessThan(60);
  });
});
