import { exports } from "cloudflare:workers";
import { env, evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { addressKey } from "../src/room/addresses";
import type { ServerFrame } from "../src/protocol";
import type { Room } from "../src/room/room";
import { Client, uniqueRoom, caller, read } from "./support/client";
import { frozenClock } from "./support/clock";

// Limits in this file's runtime: RATE_LIMIT_PER_10S 20, ADDRESS_SHARE 3 (60
// frames per 10 s per address), CONNECTS_PER_MINUTE 30, and
// MAX_CONNECTIONS_PER_ADDRESS 3 (vitest.config.ts).

const stubOf = (room: string) => env.ROOMS.getByName(room);
const lastSeq = (room: string) => runInDurableObject(stubOf(room), (instance: Room) => read(instance.info(caller())).lastSeq);
const upgrade = (room: string, address: string) =>
  exports.default.fetch(`http://chat.test/rooms/${room}`, { headers: { Upgrade: "websocket", "CF-Connecting-IP": address } });

describe("address keys", () => {
  it("are an IPv4 address whole, and an IPv6 address by its /64", () => {
    expect(addressKey("192.0.2.7")).toBe("192.0.2.7");
    expect(addressKey("2001:db8:1:2:3:4:5:6")).toBe("2001:db8:1:2::/64");
    expect(addressKey("2001:DB8:1:2::7")).toBe("2001:db8:1:2::/64");
    expect(addressKey("2001:db8:1:3::1")).toBe("2001:db8:1:3::/64");
    expect(addressKey("2001:db8::")).toBe("2001:db8:0:0::/64");
    expect(addressKey("::1")).toBe("0:0:0:0::/64");
    expect(addressKey("::ffff:192.0.2.7")).toBe("192.0.2.7");
    expect(addressKey("fe80::1%eth0")).toBe("fe80:0:0:0::/64");
    expect(addressKey(null)).toBe("unknown");
    expect(addressKey("")).toBe("unknown");
  });
});

describe("frames per address", () => {
  it("are not reset by reconnecting: open, send 21, close, four times, stores at most 3 × 20, not 80", async () => {
    const clock = frozenClock();
    const room = uniqueRoom("reconnect-flood");
    const observer = await Client.join(`/rooms/${room}?name=observer`);
    for (let round = 0; round < 4; round++) {
      const flooder = await Client.join(`/rooms/${room}?name=flooder`, "203.0.113.5");
      for (let i = 0; i < 21; i++) flooder.send(`spam ${round}.${i}`);
      // Each frame is answered, by its echo or a refusal, before the socket closes.
      for (let answered = 0; answered < 21; ) if (["message", "error"].includes(JSON.parse(await flooder.nextText()).type)) answered++;
      flooder.close();
      await flooder.closed();
      clock.advance(100);
    }
    // Refused frames count too, so a little less than 60 got through.
    expect(await lastSeq(room)).toBeLessThanOrEqual(60);
    expect(await lastSeq(room)).toBeGreaterThanOrEqual(55);
    // Someone else, on another address, is not held back by it.
    observer.send("still here");
    while ((await observer.skipTo("message")).text !== "still here");
  });

  it("are shared by all of an address's sockets, and survive hibernation, from attachments and from storage", async () => {
    frozenClock();
    const room = uniqueRoom("shared-frames");
    const office = "198.51.100.20";
    // Someone elsewhere stays, so that the room keeps its storage when the office leaves.
    const guest = await Client.join(`/rooms/${room}?name=guest`);
    const sockets = [];
    for (const name of ["ann", "bob", "cat"]) sockets.push(await Client.join(`/rooms/${room}?name=${name}`, office));
    // Each socket stays within its own limit of 20; together they use the address's 60.
    for (const socket of sockets) for (let i = 0; i < 20; i++) socket.send(`${i}`);
    expect(await waitForSeq(room, 60)).toBe(60);

    await evictDurableObject(stubOf(room), { webSockets: "hibernate" });
    sockets[0]!.send("one more");
    expect(await sockets[0]!.skipTo("error")).toMatchObject({ code: "rate_limited", retryAfterMs: expect.any(Number) });

    // Every office socket leaves, taking its copy along: the bucket goes to storage, and a new socket still finds it empty.
    for (const socket of sockets) socket.close();
    for (let left = 0; left < 3; ) left += (await guest.skipTo("presence")).left.length;
    await evictDurableObject(stubOf(room), { webSockets: "hibernate" });
    const dan = await Client.join(`/rooms/${room}?name=dan`, office);
    dan.send("hello");
    expect(await dan.next("error")).toMatchObject({ code: "rate_limited" });
    expect(await lastSeq(room)).toBe(60);
  });

  it("let another address chat while one is refused", async () => {
    frozenClock();
    const room = uniqueRoom("two-addresses");
    const a = await Client.join(`/rooms/${room}?name=a`, "192.0.2.1");
    const a2 = await Client.join(`/rooms/${room}?name=a2`, "192.0.2.1");
    const b = await Client.join(`/rooms/${room}?name=b`, "192.0.2.2");
    // 61 frames, refused ones included, use up the address's 60, well short of a flood.
    for (let i = 0; i < 61; i++) a.send(`a${i}`);
    for (let answered = 0; answered < 61; ) if (["message", "error"].includes(JSON.parse(await a.nextText()).type)) answered++;
    // A socket of the address that has sent nothing yet is refused for its address's sake, not its own.
    a2.send("a2 too");
    expect(await a2.skipTo("error")).toMatchObject({ code: "rate_limited" });
    b.send("b is fine");
    // The others' messages come first; then b's own answer, its echo or a refusal.
    let answer: ServerFrame;
    do answer = JSON.parse(await b.nextText()) as ServerFrame;
    while (answer.type !== "error" && !(answer.type === "message" && answer.user.name === "b"));
    expect(answer).toMatchObject({ type: "message", text: "b is fine" });
    expect(a.closeEvent).toBeNull();
  });
});

async function waitForSeq(room: string, seq: number): Promise<number> {
  await expect.poll(() => lastSeq(room), { message: `the room's lastSeq to reach ${seq}` }).toBe(seq);
  return seq;
}

describe("open sockets per address", () => {
  it("are at most MAX_CONNECTIONS_PER_ADDRESS; one more is 429 too_many_connections with Retry-After, and an IPv6 /64 counts as one", async () => {
    const room = uniqueRoom("per-address");
    const held = [];
    for (const address of ["2001:db8:5:6::1", "2001:db8:5:6::2", "2001:db8:5:6:ffff::3"]) held.push(await Client.join(`/rooms/${room}`, address));
    const refused = await upgrade(room, "2001:db8:5:6::4");
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get("Retry-After"))).toBeGreaterThan(0);
    expect(await refused.json()).toMatchObject({ code: "too_many_connections", retryAfterMs: expect.any(Number) });
    // Others still get in: one script cannot lock a room.
    await Client.join(`/rooms/${room}`, "2001:db8:5:7::1");

    // Counted from the attachments after a wake, and freed by a close.
    await evictDurableObject(stubOf(room), { webSockets: "hibernate" });
    expect((await upgrade(room, "2001:db8:5:6::4")).status).toBe(429);
    held[0]!.close();
    await held[0]!.closed();
    await Client.join(`/rooms/${room}`, "2001:db8:5:6::4");
  });
});

describe("connection attempts per address", () => {
  it("are a bucket of CONNECTS_PER_MINUTE that survives hibernation; refused attempts count too", async () => {
    const clock = frozenClock();
    const room = uniqueRoom("connects");
    const address = "203.0.113.77";
    // Someone else stays, so that the room keeps its storage.
    await Client.join(`/rooms/${room}?name=stays`);
    for (let i = 0; i < 30; i++) {
      const client = await Client.join(`/rooms/${room}`, address);
      client.close();
      await client.closed();
    }
    const refused = await upgrade(room, address);
    expect(refused.status).toBe(429);
    expect(await refused.json()).toMatchObject({ code: "rate_limited", retryAfterMs: 4000 });
    expect(refused.headers.get("Retry-After")).toBe("4");

    await evictDurableObject(stubOf(room), { webSockets: "hibernate" });
    clock.advance(3_999);
    expect((await upgrade(room, address)).status).toBe(429);
    clock.advance(6_000);
    await Client.join(`/rooms/${room}`, address);
  });

  it("are forgotten once their bucket is full again, so storage stays small however many addresses come and go", async () => {
    const clock = frozenClock();
    const room = uniqueRoom("many-addresses");
    const stays = await Client.join(`/rooms/${room}?name=stays`);
    const rows = () => runInDurableObject(stubOf(room), (_, state) => state.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM addresses").one().n);
    for (let i = 0; i < 100; i++) {
      const visitor = await Client.join(`/rooms/${room}`, `192.0.2.${i}`);
      visitor.close();
      await visitor.closed();
      clock.advance(3_000);
    }
    expect(await rows()).toBeLessThanOrEqual(3);
    clock.advance(60_000);
    // A message keeps it from being swept as silent, and the room from emptying.
    stays.send("still here");
    await stays.skipTo("message");
    await runDurableObjectAlarm(stubOf(room));
    expect(await rows()).toBe(0);
  });
});
