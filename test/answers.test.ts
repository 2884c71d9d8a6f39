import { describe, expect, it } from "vitest";
import { signToken } from "../src/auth/grant";
import type { ServerFrame } from "../src/protocol";
import { Client, uniqueRoom } from "./support/client";
import { slowSignatures } from "./support/clock";
import { waitFor } from "./support/frames";

const SECRET = "runtime-test-secret"; // as set for the runtime tests in vitest.config.ts
const now = () => Math.floor(Date.now() / 1000);

/** The frames a client has, parsed. */
const parsed = (client: Client): ServerFrame[] => client.unread().map((f) => JSON.parse(f) as ServerFrame);

describe("answers", () => {
  it("carry the id of the request they answer, refusals included", async () => {
    const room = uniqueRoom("ids");
    const ann = await Client.join(`/rooms/${room}?name=ann`);
    ann.send({ type: "who", id: "w" });
    ann.send({ type: "rename", name: "anna", id: "r" });
    ann.send({ type: "history", after: 0, id: "h" });
    ann.send({ type: "message", text: "hi", id: "m" });
    ann.send({ type: "edit", seq: 99, text: "x", id: "e" });
    ann.send({ type: "kick", user: "1", id: "k" });
    ann.send({ type: "nope", id: "n" });
    ann.send({ type: "token", token: "not.a.token", id: "t" });
    await waitFor(
      () => ann.unread().length >= 9,
      () => `nine frames; ${ann.unread().join(" | ")}`,
    );
    const answers = parsed(ann).filter((f) => f.type !== "message" && f.type !== "presence");
    expect(answers.map((f) => [f.type, "id" in f ? f.id : undefined])).toEqual([
      ["users", "w"],
      ["renamed", "r"],
      ["history", "h"],
      ["ack", "m"],
      ["error", "e"],
      ["error", "k"],
      ["error", "n"],
      ["error", "t"],
    ]);
  });

  it("keep the order of the frames they answer when a token check is slow, and hold up no one else", async () => {
    const room = uniqueRoom("renewal-order");
    const value = await signToken(SECRET, { room, name: "ann", sub: "ann-1", exp: now() + 3600 });
    const ann = await Client.join(`/rooms/${room}?token=${value}`);
    const bob = await Client.join(`/rooms/${room}?name=bob`);
    const signatures = slowSignatures();
    // The expiry is fixed once: reading the clock again at the check could fall in the next second on a slow machine.
    const exp = now() + 7200;
    ann.send({ type: "token", token: await signToken(SECRET, { room, name: "ann", sub: "ann-1", exp }), id: "renew" });
    ann.send({ type: "message", text: "after the renewal", id: "m" });
    await waitFor(
      () => signatures.waiting() === 1,
      () => "the renewal's signature check",
    );
    // Another member is answered while the check is pending.
    bob.send({ type: "message", text: "meanwhile", id: "b" });
    expect(await bob.skipTo("ack")).toMatchObject({ id: "b", seq: 1 });
    expect(parsed(ann).filter((f) => f.type === "ack" || f.type === "renewed")).toEqual([]);

    signatures.release();
    const renewed = await ann.skipTo("renewed");
    expect(renewed).toMatchObject({ id: "renew", exp });
    expect(await ann.skipTo("ack")).toMatchObject({ id: "m", seq: 2 });
  });
});
