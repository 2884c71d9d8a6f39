import { env, evictDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { laneOf } from "../src/protocol";
import { Client, uniqueRoom } from "./support/client";
import { frozenClock } from "./support/clock";
import { waitFor } from "./support/frames";

// Typing takes from a budget of 10 frames per 10 s, reactions from one of
// 20, each socket's own, beside its 20 frames and its address's 60. The
// clock stands still in each test, so nothing refills.

/** Whether a frame the client received answers the request with this id. */
const answers = (frame: string, id: string) => (JSON.parse(frame) as { id?: string }).id === id;

describe("lanes", () => {
  it("refuse typing beyond its own budget with rate_limited, while every message still passes", async () => {
    frozenClock();
    const room = uniqueRoom("lane-typing");
    const ann = await Client.join(`/rooms/${room}?name=ann`);
    for (let i = 0; i < 11; i++) ann.send({ type: "typing" });
    expect(await ann.skipTo("error")).toEqual({ type: "error", code: "rate_limited", message: "too many typing frames; slow down", retryAfterMs: 2000 });
    for (let i = 0; i < 20; i++) ann.send(`m${i}`);
    for (let i = 0; i < 20; i++) expect(await ann.skipTo("message")).toMatchObject({ text: `m${i}` });
    ann.send("one too many");
    expect(await ann.skipTo("error")).toMatchObject({ code: "rate_limited", message: "too many frames; slow down" });
  });

  it("let typing through when the socket's frames and its address's are spent", async () => {
    frozenClock();
    const room = uniqueRoom("lane-address");
    const address = "203.0.113.40";
    const same: Client[] = [];
    for (let i = 0; i < 3; i++) same.push(await Client.join(`/rooms/${room}?name=x${i}`, address));
    for (const client of same) for (let i = 0; i < 20; i++) client.send({ type: "who" });
    for (const client of same) {
      await waitFor(
        () => client.frames.filter((f) => f.startsWith('{"type":"users"')).length === 20,
        () => `20 answers to who; ${client.unread().length} unread`,
      );
    }
    same[0]!.send({ type: "who" });
    expect(await same[0]!.skipTo("error")).toMatchObject({ code: "rate_limited" });

    same[0]!.send({ type: "typing" });
    expect(await same[1]!.skipTo("typing")).toMatchObject({ users: [{ id: "1", name: "x0" }], count: 1 });
  });

  it("give react and unreact a budget of their own: not refused for the rate when frames are spent, refused past their own", async () => {
    frozenClock();
    const room = uniqueRoom("lane-reactions");
    const ann = await Client.join(`/rooms/${room}?name=ann`);
    ann.send("something to react to");
    for (let i = 0; i < 19; i++) ann.send({ type: "who" });
    ann.send({ type: "who", id: "spent" });
    expect(await ann.skipTo("error")).toMatchObject({ code: "rate_limited", message: "too many frames; slow down" });

    for (let i = 0; i < 21; i++) ann.send({ type: i % 2 === 0 ? "react" : "unreact", seq: 1, emoji: "👍", id: `r${i}` });
    await waitFor(
      () => ann.frames.some((f) => f.includes("too many reactions")),
      () => `a refusal for the 21st reaction; unread: ${ann.unread().join(" | ")}`,
    );
    for (let i = 0; i < 20; i++) {
      const answer = ann.frames.find((f) => answers(f, `r${i}`));
      expect(answer, `the answer to reaction r${i}`).toBeDefined();
      expect(answer).not.toContain("rate_limited");
    }
    expect(ann.frames.filter((f) => f.includes('"rate_limited"'))).toHaveLength(2);
  });

  it("refuse a frame that starts as a lane's and parses as anything else, and let it change nothing", async () => {
    frozenClock();
    const room = uniqueRoom("lane-smuggle");
    const ann = await Client.join(`/rooms/${room}?name=ann`);
    const bob = await Client.join(`/rooms/${room}?name=bob`);
    const smuggled = [
      '{"type":"typing","type":"message","text":"on typing\'s budget"}',
      '{ "type" : "react","type":"message","text":"on the reactions\' budget","id":"s-2"}',
      '{"type":"unreact","seq":1,"emoji":"👍","type":"rename","name":"mallory"}',
      '{"type":"typing"',
    ];
    for (const frame of smuggled) {
      ann.send(frame);
      expect(await ann.skipTo("error"), frame).toMatchObject({ code: "bad_message" });
    }
    // Put first, `type` names the lane; anywhere else, the frame pays as any other.
    ann.send('{"id":"t-1","type":"typing"}');
    expect(await bob.skipTo("typing")).toMatchObject({ users: [{ id: "1", name: "ann" }] });
    ann.send("the first message");
    expect(await bob.skipTo("message")).toMatchObject({ seq: 1, user: { name: "ann" }, text: "the first message" });
  });

  it("close a socket that floods a lane, as one that floods its frames", async () => {
    frozenClock();
    const room = uniqueRoom("lane-flood");
    const flooder = await Client.join(`/rooms/${room}?name=flooder`);
    const ann = await Client.join(`/rooms/${room}?name=ann`);
    for (let i = 0; i < 60; i++) flooder.send({ type: "typing" });
    expect((await flooder.closed()).code).toBe(1008);
    expect(flooder.frames.some((f) => f.includes('"reason":"flood"'))).toBe(true);
    expect(await ann.skipTo("presence")).toMatchObject({ left: [{ user: { name: "flooder" }, reason: "flood" }] });
  });

  it("are not refilled by hibernation", async () => {
    frozenClock();
    const room = uniqueRoom("lane-hibernate");
    const ann = await Client.join(`/rooms/${room}?name=ann`);
    for (let i = 0; i < 9; i++) ann.send({ type: "typing" });
    expect(await ann.skipTo("typing")).toMatchObject({ count: 1 });
    // Stopped, so that nothing keeps the room awake; and no other frame, which would save the socket's state too.
    ann.send({ type: "typing", stop: true });
    expect(await ann.skipTo("typing")).toMatchObject({ count: 0 });
    await evictDurableObject(env.ROOMS.getByName(room), { webSockets: "hibernate" });
    ann.send({ type: "typing" });
    expect(await ann.skipTo("error")).toMatchObject({ code: "rate_limited", message: "too many typing frames; slow down" });
  });
});

describe("laneOf", () => {
  it("reads the lane from a command's first key, allowing JSON's whitespace, and nothing else", () => {
    expect(laneOf('{"type":"typing"}')).toBe("typing");
    expect(laneOf(' \n{ "type" :\t"typing", "stop": true}')).toBe("typing");
    expect(laneOf('{"type":"react","seq":1,"emoji":"👍"}')).toBe("reactions");
    expect(laneOf('{"type":"unreact","seq":1,"emoji":"👍"}')).toBe("reactions");
    expect(laneOf('{"type":"typingX"}')).toBeNull();
    expect(laneOf('{"type":"message","text":"{\\"type\\":\\"typing\\"}"}')).toBeNull();
    expect(laneOf('{"id":"1","type":"typing"}')).toBeNull();
    expect(laneOf('{"type":"reaction"}')).toBeNull();
    expect(laneOf("typing")).toBeNull();
    expect(laneOf(`${" ".repeat(100)}{"type":"typing"}`)).toBeNull();
  });
});
