import { readdir } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { allGone, groupsSeen, groupsUsing, Run, stateDir } from "../support/e2e/processes";

// `npm run bench` as a person at a terminal runs it: it starts only what it
// uses, and Ctrl-C ends the servers it started.

describe("the benchmark", () => {
  it("starts only the two servers that the idle scenario uses, and stops them on Ctrl-C, exiting with 130", async () => {
    const dir = await stateDir();
    const run = new Run(["bench/run.ts", "--scenarios=idle", "--idle-clients=10", "--idle-seconds=600", `--state-dir=${dir}`]);
    await run.until(() => run.stderr.includes("idle…"), "the idle scenario to start");
    const groups = groupsUsing(dir);
    groupsSeen.push(...groups);
    expect(groups, "the wrangler process groups of the benchmark").toHaveLength(2);
    run.child.kill("SIGINT");
    expect(await run.exitCode()).toBe(130);
    await allGone(groups);
    expect(await readdir(dir), "storage left behind").toEqual([]);
  });
});
