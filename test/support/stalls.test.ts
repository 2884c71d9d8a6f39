import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import Stalls from "./stalls";

const file = (project: string, name: string, states: string[] = ["passed"]) => ({
  moduleId: `${process.cwd()}/test/${name}`,
  project: { name: project },
  children: { allTests: () => states.map((state) => ({ result: () => ({ state }) })) },
});

describe("a run that every file has reported on", () => {
  let exits: number[];
  let written: string;
  let stalls: Stalls;

  beforeEach(() => {
    vi.useFakeTimers();
    exits = [];
    written = "";
    stalls = new Stalls({ graceMs: 60_000, exit: (code) => exits.push(code), write: (text) => (written += text) });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("ends with 1 when it has not ended in the grace after its last file, naming the files that ended last", () => {
    // The same file in two projects is two files to wait for.
    const files = [file("runtime", "a.test.ts"), file("shards", "a.test.ts"), file("e2e", "b.test.ts", ["passed", "failed"])];
    stalls.onTestRunStart(files);
    for (const ended of files) stalls.onTestModuleEnd(ended);
    vi.advanceTimersByTime(59_999);
    expect(exits).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(exits).toEqual([1]);
    expect(written).toContain("Every test file has reported (tests: 3 passed, 1 failed), but the run has not ended in the 60 s since the last one");
    expect(written).toContain("  test/b.test.ts (e2e)\n  test/a.test.ts (shards)\n  test/a.test.ts (runtime)\n");
  });

  it("waits for every file: one that has not reported may be running for as long as it takes", () => {
    const files = [file("runtime", "a.test.ts"), file("shards", "a.test.ts")];
    stalls.onTestRunStart(files);
    stalls.onTestModuleEnd(files[0]!);
    vi.advanceTimersByTime(3_600_000);
    expect(exits).toEqual([]);
  });

  it("does nothing once the run has ended", () => {
    const files = [file("runtime", "a.test.ts")];
    stalls.onTestRunStart(files);
    stalls.onTestModuleEnd(files[0]!);
    stalls.onTestRunEnd();
    vi.advanceTimersByTime(3_600_000);
    expect(exits).toEqual([]);
    expect(written).toBe("");
  });
});
