import { expect, it } from "vitest";
import type { MessageFrame } from "../../src/protocol";
import { connect } from "./ws-client";

it("a client that drops and resumes with since has every message once, in order", async () => {
  const room = "/rooms/e2e-resume";
  const ann = await connect(`${room}?name=ann&client=ann`);
  const bob = await connect(`${room}?name=bob`);
  await ann.next("welcome");
  await ann.next("history");
  await bob.next("welcome");
  await bob.next("history");
  await ann.next("join");

  const log: MessageFrame[] = [];
  for (let i = 0; i < 5; i++) bob.send(`before ${i}`);
  for (let i = 0; i < 5; i++) log.push(await ann.next("message"));

  ann.ws.close(1000, "train tunnel");
  expect(await ann.closed()).toEqual({ code: 1000, reason: "train tunnel" });

  for (let i = 0; i < 20; i++) bob.send(`while away ${i}`);
  // Bob's own echoes show that all 20 are stored before Ann comes back.
  while ((await bob.skipTo("message")).text !== "while away 19");
  const back = await connect(`${room}?name=ann&client=ann&since=${log.at(-1)!.seq}`);
  await back.next("welcome");
  const history = await back.next("history");
  log.push(...history.messages);
  bob.send("after");
  while (log.at(-1)!.text !== "after") log.push(await back.next("message"));

  expect(log.map((m) => m.seq)).toEqual(Array.from({ length: 26 }, (_, i) => log[0]!.seq + i));
  expect(log.map((m) => m.text)).toEqual([
    ...Array.from({ length: 5 }, (_, i) => `before ${i}`),
    ...Array.from({ length: 20 }, (_, i) => `while away ${i}`),
    "after",
  ]);
});
