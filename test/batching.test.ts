import { describe, expect, it } from "vitest";
import { signToken } from "../src/auth/grant";
import type { ServerFrame, WireFrame } from "../src/protocol";
import { Client, uniqueRoom } from "./support/client";
import { waitFor } from "./support/frames";

// This project batches whenever a socket asks (BATCH_ABOVE=0), and its
// window never ends by itself (vitest.config.ts): once a room has
// broadcast anything, what an opted-in socket is sent waits until the test
// ends the window for it, by switching the socket out of batching or
// closing it. So what one batch holds does not depend on timing. Windows
// that end by themselves, and quiet rooms, are tested in batch-window.test.ts.

const SECRET = "batching-test-secret"; // as set for this project in vitest.config.ts

/** The frames a client received, a batch's unpacked in its place. */
function unpacked(texts: string[]): ServerFrame[] {
  return texts.flatMap((text) => {
    const frame = JSON.parse(text) as WireFrame;
    return frame.type === "batch" ? frame.frames : [frame];
  });
}

/** A frame as a word, for comparing sequences: its type and what tells it apart. */
function word(frame: ServerFrame): string {
  switch (frame.type) {
    case "message":
      return `message ${frame.text}`;
    case "ack":
    case "users":
      return `${frame.type} ${frame.id}`;
    case "presence":
      return `presence +${frame.joined.map((u) => u.name).join("+")} -${frame.left.map((l) => l.user.name).join("-")}`;
    default:
      return frame.type;
  }
}

/** Joins presence frames that follow one another: how the room's presence window splits them depends on timing. */
function words(frames: ServerFrame[]): string[] {
  const out: string[] = [];
  let joined: string[] = [];
  let left: string[] = [];
  const flush = () => {
    if (joined.length + left.length > 0) out.push(`presence +${joined.join("+")} -${left.join("-")}`);
    joined = [];
    left = [];
  };
  for (const frame of frames) {
    if (frame.type === "presence") {
      joined.push(...frame.joined.map((u) => u.name));
      left.push(...frame.left.map((l) => l.user.name));
      continue;
    }
    flush();
    out.push(word(frame));
  }
  flush();
  return out;
}

/** Connects, and reads frames up to the history when they come by themselves. */
async function arrive(path: string): Promise<Client> {
  const client = await Client.connect(path);
  await client.next("welcome");
  await client.next("history");
  return client;
}

/** Switches a client out of batching: what its window held comes as one frame, then the answer. Returns that one frame. */
async function release(client: Client, id = "off"): Promise<string> {
  const before = client.frames.length;
  client.send({ type: "batching", on: false, id });
  await waitFor(
    () => client.frames.slice(before).some((f) => f.includes('"type":"batching"')),
    () => `the answer to batching off; after it asked: ${client.frames.slice(before).join(" | ")}`,
  );
  const got = client.frames.slice(before);
  expect(JSON.parse(got.at(-1)!)).toEqual({ type: "batching", on: false, id });
  expect(got).toHaveLength(2);
  return got[0]!;
}

async function until(client: Client, text: string): Promise<void> {
  await waitFor(
    () => client.frames.some((f) => f.includes(`"text":${JSON.stringify(text)}`)),
    () => `${JSON.stringify(text)}; got ${client.frames.join(" | ")}`,
  );
}

describe("a batch frame", () => {
  it("carries what the socket would have been sent one by one, in order: presence, messages, its acks and its answers", async () => {
    const room = uniqueRoom("order");
    const ann = await arrive(`/rooms/${room}?name=ann&batch=1`);
    const obs = await arrive(`/rooms/${room}?name=obs`);
    const bob = await arrive(`/rooms/${room}?name=bob`);

    ann.send({ type: "message", text: "one", id: "a1" });
    await until(obs, "one");
    bob.send("two");
    await until(obs, "two");
    ann.send({ type: "who", id: "w" });
    ann.send({ type: "message", text: "three", id: "a3" });
    await until(obs, "three");
    bob.close();
    await waitFor(
      () => obs.frames.some((f) => f.includes('"left":[{')),
      () => `bob's leave at obs; obs has ${obs.frames.join(" | ")}`,
    );
    // Everything since ann's history is still in its window; obs, which never asked for batches, had each frame at once.
    expect(ann.unread()).toEqual([]);
    expect(obs.frames.every((f) => !f.includes('"type":"batch"'))).toBe(true);

    const batch = JSON.parse(await release(ann)) as WireFrame;
    expect(batch.type).toBe("batch");
    expect(words((batch as Extract<WireFrame, { type: "batch" }>).frames)).toEqual([
      "presence +obs+bob -",
      "message one",
      "ack a1",
      "message two",
      "users w",
      "message three",
      "ack a3",
      "presence + -bob",
    ]);
    // The same messages and presence as obs had, in the same order.
    const shared = (frames: ServerFrame[]) => words(frames).filter((w) => w.startsWith("message") || w === "presence + -bob");
    expect(shared(unpacked(ann.frames.slice(2)))).toEqual(shared(unpacked(obs.frames.slice(2))));

    // Out of batching, each frame comes by itself again, at once.
    await ann.skipTo("batching");
    obs.send("four");
    expect((await ann.next("message")).text).toBe("four");
  });

  it("reaches a socket that opts in mid-session only after its answer, and holds a newcomer's welcome and history in order", async () => {
    const room = uniqueRoom("mid-session");
    const obs = await arrive(`/rooms/${room}?name=obs`);
    const cat = await arrive(`/rooms/${room}?name=cat`);
    cat.send({ type: "batching", on: true, id: "on" });
    expect(await cat.next("batching")).toEqual({ type: "batching", on: true, id: "on" });

    obs.send("hello");
    await until(obs, "hello");
    // A socket that asked for batches when it connected, while a window is open: its welcome waits in the window too.
    const dan = await Client.connect(`/rooms/${room}?name=dan&batch=1`);
    await waitFor(
      () => obs.frames.some((f) => f.includes('"name":"dan"')),
      () => `dan's join at obs; obs has ${obs.frames.join(" | ")}`,
    );
    expect(cat.unread()).toEqual([]);
    expect(dan.unread()).toEqual([]);

    const forDan = JSON.parse(await release(dan)) as WireFrame;
    expect(forDan.type === "batch" && forDan.frames.map((f) => f.type)).toEqual(["welcome", "history"]);
    const forCat = JSON.parse(await release(cat)) as WireFrame;
    expect(forCat.type === "batch" && words(forCat.frames)).toEqual(["message hello", "presence +dan -"]);
  });

  it("puts several lines in one message in the text format", async () => {
    const room = uniqueRoom("text");
    const obs = await arrive(`/rooms/${room}?name=obs`);
    const tex = await Client.connect(`/rooms/${room}?name=tex&format=text&batch=1`);
    await waitFor(
      () => tex.frames.some((f) => f.startsWith("Welcome")),
      () => `tex's welcome; it has ${tex.frames.join(" | ")}`,
    );
    obs.send("first line");
    obs.send("second line");
    await until(obs, "second line");

    const before = tex.frames.length;
    tex.send({ type: "batching", on: false });
    await waitFor(
      () => tex.frames.length >= before + 2,
      () => `the window's lines and the answer; tex has ${tex.frames.slice(before).join(" | ")}`,
    );
    expect(tex.frames.slice(before)).toEqual([["obs: first line", "obs: second line"].join("\n"), "Each line now comes in a message of its own."]);
  });

  it("sends what the window holds before the closing frame and the close, as one frame", async () => {
    const room = uniqueRoom("kicked");
    const token = await signToken(SECRET, { room, name: "mod", role: "moderator", sub: "mod-1", exp: Math.floor(Date.now() / 1000) + 3600 });
    const mod = await arrive(`/rooms/${room}?token=${token}`);
    const eve = await arrive(`/rooms/${room}?name=eve&batch=1`);
    const you = (JSON.parse(eve.frames[0]!) as Extract<ServerFrame, { type: "welcome" }>).you;
    mod.send("before the kick");
    await until(mod, "before the kick");
    mod.send({ type: "kick", user: you.id });

    expect((await eve.closed()).code).toBe(4001);
    expect(eve.frames).toHaveLength(3);
    const batch = JSON.parse(eve.frames[2]!) as WireFrame;
    expect(batch.type === "batch" && batch.frames.map(word)).toEqual(["message before the kick", "closing"]);
  });
});

describe("a shard's sockets", () => {
  it("get batches from the shard's own delivery, their acks in place, while its other sockets get each frame at once", async () => {
    const room = uniqueRoom("shard");
    // Three sockets to an object here: the first three on the room, the next on shard 1.
    const [p1, p2] = [await arrive(`/rooms/${room}?name=p1`), await arrive(`/rooms/${room}?name=p2`)];
    await arrive(`/rooms/${room}?name=p3`);
    const shy = await arrive(`/rooms/${room}?name=shy&batch=1`);
    const sid = await arrive(`/rooms/${room}?name=sid`);

    p1.send("m1");
    shy.send({ type: "message", text: "s1", id: "s" });
    await until(sid, "s1");
    p2.send("m2");
    await until(sid, "m2");
    expect(shy.unread()).toEqual([]);
    expect(sid.frames.every((f) => !f.includes('"type":"batch"'))).toBe(true);

    const batch = JSON.parse(await release(shy)) as WireFrame;
    expect(batch.type === "batch" && words(batch.frames)).toEqual(["presence +sid -", "message m1", "message s1", "ack s", "message m2"]);
  });
});
