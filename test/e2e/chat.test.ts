import { describe, expect, it } from "vitest";
import { connect, WsClient, wsBase } from "../support/e2e/ws-client";

describe("a room served by wrangler dev", () => {
  it("lets two clients chat while a third follows in text format", async () => {
    const ann = await connect("/rooms/e2e-chat?name=ann");
    expect(await ann.next("welcome")).toMatchObject({ room: "e2e-chat", you: { name: "ann" } });
    await ann.next("history");
    const bob = await connect("/rooms/e2e-chat?name=bob");
    expect((await bob.next("welcome")).users.map((u) => u.name)).toEqual(["ann", "bob"]);
    await bob.next("history");
    expect(await ann.next("presence")).toMatchObject({ joined: [{ name: "bob" }], online: 2 });

    const tex = await connect("/rooms/e2e-chat?name=tex&format=text");
    expect(await tex.nextText()).toBe("Welcome to the chat room e2e-chat! You are tex. Online: ann, bob, tex");

    for (const client of [ann, bob]) expect(await client.next("presence")).toMatchObject({ joined: [{ name: "tex" }] });
    ann.send("hi bob");
    for (const client of [ann, bob]) {
      expect(await client.next("message")).toMatchObject({ user: { name: "ann" }, text: "hi bob" });
    }
    bob.send({ type: "message", text: "hi ann", id: "b-1" });
    for (const client of [ann, bob]) {
      expect(await client.next("message")).toMatchObject({ user: { name: "bob" }, text: "hi ann" });
    }
    expect(await bob.next("ack")).toEqual({ type: "ack", id: "b-1", seq: 2 });
    expect(await tex.nextText()).toBe("ann: hi bob");
    expect(await tex.nextText()).toBe("bob: hi ann");

    bob.ws.close(1000, "bye");
    expect(await tex.nextText()).toBe("bob left the chat room.");
  });

  it("answers a clean close with a clean close, not 1006", async () => {
    const ann = await connect("/rooms/e2e-close?name=ann");
    await ann.next("welcome");
    ann.ws.close(1000, "done");
    expect(await ann.closed()).toEqual({ code: 1000, reason: "done" });
  });

  it("answers ping with pong", async () => {
    const ann = await connect("/rooms/e2e-ping");
    await ann.next("welcome");
    await ann.next("history");
    ann.send("ping");
    expect(await ann.nextText()).toBe("pong");
  });

  it("refuses a bad room name with a JSON error before upgrading", async () => {
    const refusal = await WsClient.refusal(`${wsBase}/rooms/a%2Fb`);
    expect(refusal.status).toBe(400);
    expect(JSON.parse(refusal.body)).toMatchObject({ code: "bad_room" });
  });
});
