import { expect, it, vi } from "vitest";
import type { ServerFrame } from "../src/protocol";
import { Client } from "./support/client";
import { fastClock, seededRandom } from "./support/clock";

type Fuzz = { frame: string | ArrayBuffer; expect: "error" | "forbidden" | "message" | "edit" | "either"; edit?: { seq: number; text: string } };

/** Messages in the room before the fuzz starts: the fuzzer's own, and others'. */
type Existing = { own: number[]; others: number[] };

/** Hostile frames of many kinds, each with what the room must do with it. */
function fuzzFrame(next: () => number, existing: Existing): Fuzz {
  const pick = <T>(items: T[]): T => items[Math.floor(next() * items.length)]!;
  const bytes = (n: number) => Array.from({ length: n }, () => Math.floor(next() * 256));
  switch (Math.floor(next() * 23)) {
    case 0: // random bytes as text: lone surrogates, controls and all; chat or refused, never both
      return { frame: String.fromCharCode(...bytes(1 + Math.floor(next() * 64)).map((b) => b * 257)), expect: "either" };
    case 1:
      return { frame: new Uint8Array(bytes(1 + Math.floor(next() * 64))).buffer, expect: "error" };
    case 2:
      return { frame: "z".repeat(16 * 1024 + 1 + Math.floor(next() * 4096)), expect: "error" };
    case 3: {
      const depth = 10 + Math.floor(next() * 5000);
      return { frame: `{"type":"message","text":${"[".repeat(depth)}1${"]".repeat(depth)}}`, expect: "error" };
    }
    case 4:
      return { frame: JSON.stringify({ type: "message", text: pick([1, null, true, {}, ["x"]]) }), expect: "error" };
    case 5:
      return { frame: JSON.stringify({ type: pick(["shout", "admin", "__proto__", "constructor", "MESSAGE", ""]) }), expect: "error" };
    case 6:
      return { frame: `{"type":"message","text":"bad \\ud83d half"}`, expect: "error" };
    case 7:
      return { frame: `{"type":"message","text":"fine","__proto__":{"admin":true},"id":{"toString":1}}`, expect: "error" };
    case 8:
      return { frame: JSON.stringify({ type: "message", text: `esc \u001b[31m red ${next()}` }), expect: "error" };
    case 9:
      return { frame: pick(["", " ", "\n\t "]), expect: "error" };
    case 10:
      return { frame: JSON.stringify({ type: "rename", name: pick(["", "\u202eevil", "x".repeat(40), 7]) }), expect: "error" };
    case 11: // moderation from someone who is not a moderator, well-formed or not: refused, and nobody is touched
      return {
        frame: JSON.stringify({
          type: pick(["kick", "ban", "unban", "mute", "unmute"]),
          user: pick(["1", "2", "3", "99", -1, "", null, { id: "2" }]),
          seconds: pick([60, -5, 0, 1e15, 1.5, "60", undefined]),
        }),
        expect: "error",
      };
    case 12: // an edit or delete of no message of its own, well-formed or not: refused, and nothing changes
      return {
        frame: JSON.stringify({
          type: pick(["edit", "delete"]),
          seq: pick([-1, 0, 1.5, "3", null, 2 ** 53, 10_000_000, undefined]),
          text: pick(["new", "", 5, "\u0007", undefined]),
          id: pick([undefined, "", "x".repeat(65), "e1"]),
        }),
        expect: "error",
      };
    case 13: // someone else's message, which only its author may edit and only a moderator may delete
      return {
        frame: JSON.stringify({ type: pick(["edit", "delete"]), seq: pick(existing.others), text: "not yours", id: pick([undefined, `x${next()}`]) }),
        expect: "forbidden",
      };
    case 14: {
      const edit = { seq: pick(existing.own), text: `fuzz edit ${next()}` };
      return { frame: JSON.stringify({ type: "edit", ...edit, id: pick([undefined, `e${next()}`]) }), expect: "edit", edit };
    }
    case 15: // a reaction that is malformed or to no message: refused, and no summary changes
      return {
        frame: JSON.stringify({
          type: pick(["react", "unreact"]),
          seq: pick([-1, 0, 1.5, "3", null, 2 ** 53, 10_000_000, undefined]),
          emoji: pick(["👍", "", "a", "👍👍", 5, ":no spaces:", "", undefined]),
          id: pick([undefined, "", "x".repeat(65), "r1"]),
        }),
        expect: "error",
      };
    case 16: // a thread of no message, or asked for badly
      return {
        frame: JSON.stringify({ type: "thread", seq: pick([0, -1, "2", null, 10_000_000]), after: pick([undefined, -1, "x", 1.5, 0]) }),
        expect: "error",
      };
    case 17: // a reply to no message, or with a replyTo that is no seq
      return { frame: JSON.stringify({ type: "message", text: "a reply", replyTo: pick([0, -3, "1", 10_000_000, null, 2 ** 53, 1.5]) }), expect: "error" };
    case 18: // a typing frame whose stop is not true, or one that starts as typing and is something else
      return {
        frame: pick([
          JSON.stringify({ type: "typing", stop: pick(["yes", 1, null, {}, "true"]) }),
          '{"type":"typing","type":"message","text":"smuggled"}',
          '{"type":"react","type":"rename","name":"mallory"}',
        ]),
        expect: "error",
      };
    case 19: // a read position that is no seq, or from a connection without an account to keep it for
      return {
        frame: JSON.stringify({ type: "read", seq: pick([0, -1, 1.5, "2", null, 2 ** 53, undefined, 1]), id: pick([undefined, "", "x".repeat(65), "r1"]) }),
        expect: "error",
      };
    case 20: // a search without a query, with one too long or that FTS5 cannot read, or with a before that is no seq
      return {
        frame: JSON.stringify({
          type: "search",
          q: pick(["", "   ", 5, null, ["lunch"], "x".repeat(201), '"unclosed', "AND", "*", "(a OR", "nope:word", undefined]),
          before: pick([undefined, 0, -1, "3", 1.5, null]),
          id: pick([undefined, "s1"]),
        }),
        expect: "error",
      };
    case 21: // a batching request whose `on` is no boolean
      return { frame: JSON.stringify({ type: "batching", on: pick(["yes", 1, null, undefined, {}, "true"]), id: pick([undefined, "b1"]) }), expect: "error" };
    default:
      return { frame: JSON.stringify({ type: "message", text: `fuzz ok ${next()}`, id: `f${next()}` }), expect: "message" };
  }
}

it("survives thousands of hostile frames, delivering every valid message and own edit exactly once, in order, and refusing changes to anyone else's as forbidden", async () => {
  fastClock(); // rate limits are tested elsewhere; here every frame must reach the parser
  const errors = vi.spyOn(console, "error");
  const next = seededRandom(7);
  const room = "fuzz";
  const fuzzer = await Client.join(`/rooms/${room}?name=fuzzer`);
  const ann = await Client.join(`/rooms/${room}?name=ann`);
  const bob = await Client.join(`/rooms/${room}?name=bob`);
  await fuzzer.presence({ joined: 2 });
  await ann.presence({ joined: 1 });

  // Messages to aim edits and deletes at, so that they reach the author check.
  const existing: Existing = { own: [], others: [] };
  for (const [speaker, list] of [
    [ann, existing.others],
    [bob, existing.others],
    [fuzzer, existing.own],
    [fuzzer, existing.own],
  ] as const) {
    speaker.send("before the fuzz");
    list.push((await fuzzer.skipTo("message")).seq);
  }
  for (let i = 0; i < 4; i++) await ann.skipTo("message");

  const sent: Fuzz[] = [];
  const valid: string[] = [];
  for (let i = 0; i < 3000; i++) {
    const fuzz = fuzzFrame(next, existing);
    sent.push(fuzz);
    fuzzer.send(fuzz.frame);
    if (i % 50 === 0) {
      const speaker = i % 100 === 0 ? ann : bob;
      const text = `${speaker === ann ? "ann" : "bob"} ${i}`;
      valid.push(text);
      speaker.send(text);
    }
  }

  // The fuzzer gets, for each frame in order, either one error, or its message or edit (then an ack if it had an id).
  const echoed: string[] = [];
  for (const [i, fuzz] of sent.entries()) {
    let frame = JSON.parse(await fuzzer.nextText()) as ServerFrame;
    while (frame.type === "message" && frame.user.name !== "fuzzer") frame = JSON.parse(await fuzzer.nextText()) as ServerFrame;
    const what = `frame ${i}: ${String(fuzz.frame).slice(0, 80)}, answered ${JSON.stringify(frame).slice(0, 200)}`;
    if (fuzz.expect === "forbidden") expect(frame, what).toMatchObject({ type: "error", code: "forbidden" });
    else if (fuzz.expect === "edit") expect(frame, what).toMatchObject({ type: "edit", ...fuzz.edit });
    else expect(frame.type, what).toBe(fuzz.expect === "either" ? (frame.type === "error" ? "error" : "message") : fuzz.expect);
    if (frame.type === "message") echoed.push(frame.text);
    if (frame.type === "message" || frame.type === "edit") {
      if (String(fuzz.frame).includes('"id"')) {
        let ack = JSON.parse(await fuzzer.nextText()) as ServerFrame;
        while (ack.type === "message") ack = JSON.parse(await fuzzer.nextText()) as ServerFrame;
        expect(ack.type).toBe("ack");
      }
    }
  }

  // The room still answers, and the others saw exactly the valid messages, each once, in order.
  ann.send({ type: "who" });
  const annLog: string[] = [];
  const fuzzLog: string[] = [];
  const changed: ServerFrame[] = [];
  for (;;) {
    const frame = JSON.parse(await ann.nextText()) as ServerFrame;
    if (frame.type === "users") break;
    if (frame.type === "edit" || frame.type === "delete") changed.push(frame);
    if (frame.type !== "message") continue;
    (frame.user.name === "fuzzer" ? fuzzLog : annLog).push(frame.text);
  }
  expect(annLog).toEqual(valid);
  expect(fuzzLog).toEqual(echoed);
  // The fuzzer's own edits, each once, in order, and no change to anyone else's message.
  expect(changed.map((frame) => (frame.type === "edit" ? { seq: frame.seq, text: frame.text } : frame))).toEqual(sent.flatMap((fuzz) => fuzz.edit ?? []));
  expect(sent.filter((fuzz) => fuzz.expect === "forbidden").length).toBeGreaterThan(100);
  expect(changed.length).toBeGreaterThan(100);
  expect(echoed.length).toBeGreaterThan(100);
  expect(fuzzLog.every((t) => t.isWellFormed() && !/[\u0000-\u0008\u001b\u007f]/.test(t))).toBe(true);
  expect(errors).not.toHaveBeenCalled();
  expect(bob.closeEvent).toBeNull();
});
