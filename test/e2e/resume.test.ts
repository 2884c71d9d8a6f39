import { expect, inject, it } from "vitest";
import type { MessageFrame, MessagePage } from "../../src/protocol";
import { connect } from "../support/e2e/ws-client";

it("a client that drops, misses 20 messages and resumes with since has every message once, in order", async () => {
  const room = "e2e-resume";
  const ann = await connect(`/rooms/${room}?name=ann&client=ann`);
  const bob = await connect(`/rooms/${room}?name=bob`);
  const cat = await connect(`/rooms/${room}?name=cat`);
  for (const client of [ann, bob, cat]) await client.skipTo("history");

  const log: MessageFrame[] = [];
  for (let i = 0; i < 5; i++) bob.send(`before ${i}`);
  for (let i = 0; i < 5; i++) log.push(await ann.skipTo("message"));

  ann.ws.close(1000, "train tunnel");
  expect(await ann.closed()).toEqual({ code: 1000, reason: "train tunnel" });

  // Two others talk while Ann is away (each within the rate limit).
  for (let i = 0; i < 10; i++) {
    bob.send(`bob while away ${i}`);
    cat.send(`cat while away ${i}`);
  }
  // Their own echoes show that all 20 are stored before Ann comes back.
  while ((await bob.skipTo("message")).text !== "bob while away 9");
  while ((await cat.skipTo("message")).text !== "cat while away 9");

  const back = await connect(`/rooms/${room}?name=ann&client=ann&since=${log.at(-1)!.seq}`);
  await back.next("welcome");
  log.push(...(await back.next("history")).messages);
  bob.send("after");
  while (log.at(-1)!.text !== "after") log.push(await back.skipTo("message"));

  const stored = (await (await fetch(`${inject("devUrl")}/api/rooms/${room}/messages?since=0&limit=500`)).json()) as MessagePage;
  expect(stored.messages).toHaveLength(26);
  expect(log).toEqual(stored.messages);
  expect(log.filter((m) => m.text.includes("while away"))).toHaveLength(20);
});
