import { env, evictDurableObject, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { HistoryFrame, MessageFrame } from "../src/protocol";
import type { Room } from "../src/room/room";
import { Client, uniqueRoom, caller, read } from "./support/client";

const stubOf = (room: string) => env.ROOMS.getByName(room);

/** Posts `count` messages of `size` characters through the room's RPC method, each from its own address. */
async function seed(room: string, count: number, size = 10): Promise<void> {
  await runInDurableObject(stubOf(room), async (instance: Room) => {
    for (let i = 1; i <= count; i++) {
      await instance.post({ name: "bot", text: `${i} `.padEnd(size, "x"), address: `seed-${i}`, client: null, identity: null });
    }
  });
}

const seqs = (messages: MessageFrame[]) => messages.map((m) => m.seq);

describe("a resume of a long history", () => {
  it("comes in frames of at most HISTORY_REPLAY_LIMIT, and history requests fetch the rest with no gap and no duplicate at any seam, while live messages arrive", async () => {
    const room = uniqueRoom("paged");
    await seed(room, 1000, 2000);
    const bob = await Client.join(`/rooms/${room}?name=bob`);
    const ann = await Client.connect(`/rooms/${room}?name=ann&since=0`);
    expect(await ann.next("welcome")).toMatchObject({ lastSeq: 1000 });

    const pages: HistoryFrame[] = [await ann.next("history")];
    const live: MessageFrame[] = [];
    // Bob talks while Ann is still catching up.
    for (let i = 0; i < 3; i++) bob.send(`live ${i}`);
    while (pages.at(-1)!.more) {
      ann.send({ type: "history", after: pages.at(-1)!.messages.at(-1)!.seq });
      for (;;) {
        const frame = JSON.parse(await ann.nextText()) as HistoryFrame | MessageFrame;
        if (frame.type === "history") {
          pages.push(frame);
          break;
        }
        if (frame.type === "message") live.push(frame);
      }
    }
    for (const page of pages) expect(page.messages.length).toBeLessThanOrEqual(200);
    expect(pages[0]).toMatchObject({ more: true, gap: false, reset: false });
    expect(seqs(pages[0]!.messages)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    // One history frame is a fifth of what the whole replay was: 200 messages of 2,000 characters.
    expect(JSON.stringify(pages[0]).length).toBeLessThan(450_000);

    // What a client keeps: every seq once, in order, pages and live together.
    const seen = new Map<number, MessageFrame>();
    for (const m of [...pages.flatMap((p) => p.messages), ...live]) seen.set(m.seq, m);
    while (live.length < 3) live.push(await ann.skipTo("message"));
    for (const m of live) seen.set(m.seq, m);
    expect([...seen.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: 1003 }, (_, i) => i + 1));
    // Pages join seam to seam: each starts right after the one before.
    for (let i = 1; i < pages.length; i++) {
      const previous = pages[i - 1]!.messages;
      if (previous.length > 0 && pages[i]!.messages.length > 0) expect(pages[i]!.messages[0]!.seq).toBe(previous.at(-1)!.seq + 1);
    }
    expect(pages.at(-1)!.more).toBe(false);
  });

  it("tells a text-format reader how to ask for the rest", async () => {
    const room = uniqueRoom("paged-text");
    await seed(room, 201);
    const tex = await Client.connect(`/rooms/${room}?name=tex&format=text&since=0`);
    await tex.nextText();
    const lines = (await tex.nextText()).split("\n");
    expect(lines).toHaveLength(201);
    expect(lines.at(-1)).toBe('(more messages follow; send {"type":"history","after":200} for them)');
    tex.send('{"type":"history","after":200}');
    expect(await tex.nextText()).toBe("bot: 201 xxxxxx");
  });

  it("refuses a history request without a whole `after`", async () => {
    const ann = await Client.join(`/rooms/${uniqueRoom("bad-after")}?name=ann`);
    for (const after of [undefined, -1, 1.5, "3"]) {
      ann.send({ type: "history", after });
      expect(await ann.next("error")).toMatchObject({ code: "bad_message" });
    }
  });
});

describe("the epoch", () => {
  it("is the same in every welcome and history of a room's storage, and across hibernation", async () => {
    const room = uniqueRoom("epoch");
    const ann = await Client.connect(`/rooms/${room}?name=ann`);
    const { epoch } = await ann.next("welcome");
    expect(epoch).toMatch(/^[0-9a-f]{16}$/);
    expect((await ann.next("history")).epoch).toBe(epoch);
    await evictDurableObject(stubOf(room), { webSockets: "hibernate" });
    const bob = await Client.connect(`/rooms/${room}?name=bob`);
    expect((await bob.next("welcome")).epoch).toBe(epoch);
    const other = await Client.connect(`/rooms/${uniqueRoom("epoch")}?name=ann`);
    expect((await other.next("welcome")).epoch).not.toBe(epoch);
  });

  it("tells a client resuming from a history that was wiped, and has grown past its since, to reset instead of merging the two", async () => {
    const room = uniqueRoom("wiped");
    await seed(room, 5);
    const ann = await Client.join(`/rooms/${room}?name=ann`);
    const old = await runInDurableObject(stubOf(room), (instance: Room) => read(instance.messages(null, 1, caller())).epoch);

    // The room loses its storage (deleted by an operator, say) while sockets drop, and then grows again.
    await runInDurableObject(stubOf(room), (_, state) => state.storage.deleteAll());
    await evictDurableObject(stubOf(room), { webSockets: "close" });
    await ann.closed();
    await seed(room, 8);

    const back = await Client.connect(`/rooms/${room}?name=ann&since=5&epoch=${old}`);
    const welcome = await back.next("welcome");
    expect(welcome.epoch).not.toBe(old);
    const history = await back.next("history");
    expect(history).toMatchObject({ reset: true, lastSeq: 8 });
    expect(seqs(history.messages)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);

    // The same since with the current epoch is an ordinary resume.
    const again = await Client.connect(`/rooms/${room}?name=ann&since=5&epoch=${welcome.epoch}`);
    await again.next("welcome");
    expect(await again.next("history")).toMatchObject({ reset: false, messages: [{ seq: 6 }, { seq: 7 }, { seq: 8 }] });
  });

  it("does not reset a client that had seen nothing, whatever epoch it names", async () => {
    const room = uniqueRoom("epoch-empty");
    const ann = await Client.connect(`/rooms/${room}?name=ann&since=0&epoch=0000000000000000`);
    await ann.next("welcome");
    expect(await ann.next("history")).toMatchObject({ reset: false });
  });
});
