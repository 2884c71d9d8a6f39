import { describe, expect, it } from "vitest";
import { LineSplitter, Tail } from "./output";

/** `count` numbered lines of about 40 characters, in chunks of `size` that cut lines anywhere. */
function stream(count: number, size: number): { text: string; chunks: string[] } {
  const text = Array.from({ length: count }, (_, i) => `{"event":"wake","room":"r","n":${i}}\n`).join("");
  const chunks: string[] = [];
  for (let at = 0; at < text.length; at += size) chunks.push(text.slice(at, at + size));
  return { text, chunks };
}

describe("the tail of a server's output", () => {
  it("is the last 64 KiB of hours of output, and holds at most twice that", () => {
    const limit = 64 * 1024;
    const tail = new Tail(limit);
    // 4 MB in chunks of 1000 characters, as a pipe may hand them.
    const { text, chunks } = stream(100_000, 1000);
    let most = 0;
    for (const chunk of chunks) {
      tail.push(chunk);
      most = Math.max(most, tail.held);
    }
    expect(String(tail)).toBe(text.slice(-limit));
    expect(most, "characters held at any time").toBeLessThanOrEqual(2 * limit);
  });

  it("is all of it while it is shorter than the limit", () => {
    const tail = new Tail(100);
    tail.push("Ready on ");
    tail.push("http://127.0.0.1:8787\n");
    expect(String(tail)).toBe("Ready on http://127.0.0.1:8787\n");
  });
});

describe("the lines of a server's output", () => {
  it("come whole and in order, however the chunks cut them", () => {
    const { text, chunks } = stream(1000, 7);
    const lines: string[] = [];
    const splitter = new LineSplitter(1024, (line) => lines.push(line));
    for (const chunk of chunks) splitter.push(chunk);
    expect(lines).toEqual(text.split("\n").slice(0, -1));
  });

  it("come as they arrive, and the last one without a line end when the stream ends", () => {
    const lines: string[] = [];
    const splitter = new LineSplitter(1024, (line) => lines.push(line));
    splitter.push("first\nsec");
    expect(lines).toEqual(["first"]);
    splitter.push("ond\n\nla");
    expect(lines).toEqual(["first", "second", ""]);
    splitter.push("st");
    splitter.end();
    expect(lines).toEqual(["first", "second", "", "last"]);
  });

  it("hold an unfinished line to the limit: a stream with no line end keeps only the last 64 KiB of it", () => {
    const limit = 64 * 1024;
    const lines: string[] = [];
    const splitter = new LineSplitter(limit, (line) => lines.push(line));
    const endless = "0123456789".repeat(100);
    for (let i = 0; i < 4000; i++) splitter.push(endless);
    splitter.push("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toHaveLength(limit);
    expect(lines[0]).toBe(endless.repeat(66).slice(-limit));
  });
});
