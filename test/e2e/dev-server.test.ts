import { readdir } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { allGone, groupsSeen, members, Run, stateDir } from "../support/e2e/processes";

// The dev-server helper as a person at a terminal uses it: whatever ends the
// process that started servers, Ctrl-C included, ends the servers too. The
// benchmark's servers are in bench.test.ts, and a server's output in
// dev-server-output.test.ts: files apart, so that they run beside these.

/** Starts `servers` dev servers in a script of their own (test/support/e2e/serve.ts) and returns once they answer. */
async function serve(servers: number, then: "wait" | "throw" | "reject"): Promise<{ run: Run; groups: number[]; dir: string }> {
  const dir = await stateDir();
  const run = new Run(["test/support/e2e/serve.ts", `--servers=${servers}`, `--state-dir=${dir}`, `--end=${then}`]);
  await run.until(() => run.stdout.includes("\n"), `${servers} servers answering`);
  const { groups } = JSON.parse(run.stdout) as { groups: number[] };
  groupsSeen.push(...groups);
  expect(groups).toHaveLength(servers);
  for (const group of groups) expect(members(group), `the processes of group ${group}`).toEqual(expect.arrayContaining([expect.stringMatching(/ workerd$/)]));
  return { run, groups, dir };
}

// One after another: started together, five servers on a loaded machine outlast any test's time.
describe("servers end with the process that started them", () => {
  it.each([
    ["SIGINT", 130],
    ["SIGTERM", 143],
  ] as const)("on %s, every one is stopped and its storage deleted, and the process exits with %i", async (signal, code) => {
    // One server each: the benchmark's test (bench.test.ts) has a signal stop two.
    const { run, groups, dir } = await serve(1, "wait");
    run.child.kill(signal);
    expect(await run.exitCode()).toBe(code);
    await allGone(groups);
    expect(await readdir(dir), "storage left behind").toEqual([]);
  });

  it.each(["throw", "reject"] as const)("when the process crashes (an uncaught %s), they are ended on its way out", async (then) => {
    const { run, groups, dir } = await serve(1, then);
    expect(await run.exitCode()).toBe(1);
    expect(run.stderr).toContain("the script broke");
    await allGone(groups);
    expect(await readdir(dir), "storage left behind").toEqual([]);
  });

  it("when the process is killed outright, where no handler runs, the group's lifeline kills the servers", async () => {
    const { run, groups } = await serve(1, "wait");
    run.child.kill("SIGKILL");
    await allGone(groups);
  });
});
