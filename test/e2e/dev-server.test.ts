import { spawn, type ChildProcess } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { waitFor } from "../support/frames";
import { startDevServer } from "../support/e2e/wrangler";
import { WsClient } from "../support/e2e/ws-client";

// The dev-server helper and the benchmark, as a person at a terminal uses
// them: whatever ends the process that started servers, Ctrl-C included,
// ends the servers too, and the benchmark starts only what it uses.

/** Deadline for a script to have its servers answering: above the helper's own 90 s, which fails first and says why. */
const SERVING_DEADLINE_MS = 120_000;
/** Deadline for a process, and the servers it started, to be gone once it is told to end. */
const GONE_DEADLINE_MS = 30_000;

const root = fileURLToPath(new URL("../..", import.meta.url));

/** A Node process run from the project's root, and all it printed. */
class Run {
  readonly child: ChildProcess;
  stdout = "";
  stderr = "";

  constructor(args: string[]) {
    this.child = spawn(process.execPath, args, { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
    this.child.stdout!.on("data", (chunk: Buffer) => (this.stdout += chunk));
    this.child.stderr!.on("data", (chunk: Buffer) => (this.stderr += chunk));
    runs.push(this);
  }

  get ended(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }

  /** Waits until `ready` holds while the process runs; fails at once if it ends, and at the deadline. */
  async until(ready: () => boolean, what: string): Promise<void> {
    await waitFor(
      () => ready() || this.ended,
      () => `${what}; stderr: ${this.stderr.slice(-2000)}`,
      SERVING_DEADLINE_MS,
    );
    if (!ready()) throw new Error(`the process ended (${this.child.exitCode ?? this.child.signalCode}) before ${what}:\n${this.stderr.slice(-4000)}`);
  }

  /** Its exit code, once it ends within the deadline. */
  async exitCode(): Promise<number | null> {
    await waitFor(
      () => this.ended,
      () => `the process to end; stderr: ${this.stderr.slice(-2000)}`,
      GONE_DEADLINE_MS,
    );
    return this.child.exitCode;
  }
}

const runs: Run[] = [];
const stateDirs: string[] = [];
/** The process groups of the servers a test saw started. */
const groupsSeen: number[] = [];

afterEach(async () => {
  // A test that failed half-way, perhaps because the helper no longer stops
  // servers: nothing it started outlives it.
  for (const run of runs.splice(0)) if (!run.ended) run.child.kill("SIGKILL");
  for (const group of groupsSeen.splice(0)) {
    if (members(group).length === 0) continue;
    try {
      process.kill(-group, "SIGKILL");
    } catch {
      // Gone in between.
    }
  }
  await Promise.all(stateDirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

async function stateDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "edge-chat-stopping-"));
  stateDirs.push(dir);
  return dir;
}

/** The processes of a group that still run (a zombie has ended), by command. */
function members(group: number): string[] {
  const found: string[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      // The command may hold spaces; the fields after its closing parenthesis are fixed: state, parent, group.
      const [state, , pgrp] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(pgrp) === group && state !== "Z") found.push(`${entry} ${stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"))}`);
    } catch {
      // The process ended while being read.
    }
  }
  return found;
}

/** The process groups of the wrangler processes that keep their storage under `dir`. */
function groupsUsing(dir: string): number[] {
  const groups = new Set<number>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (!readFileSync(`/proc/${entry}/cmdline`, "utf8").includes(`--persist-to=${dir}/`)) continue;
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      groups.add(Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[2]));
    } catch {
      // The process ended while being read.
    }
  }
  return [...groups];
}

async function allGone(groups: number[]): Promise<void> {
  expect(groups.length).toBeGreaterThan(0);
  const left = () => groups.flatMap(members);
  await waitFor(
    () => left().length === 0,
    () => `no process left in groups ${groups.join(", ")}; left: ${left().join(", ")}`,
    GONE_DEADLINE_MS,
  );
}

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

// One after another: started together, six servers on a loaded machine outlast any test's time.
describe("servers end with the process that started them", () => {
  it.each([
    ["SIGINT", 130],
    ["SIGTERM", 143],
  ] as const)("on %s, every one is stopped and its storage deleted, and the process exits with %i", async (signal, code) => {
    // One server each: the benchmark's test below has a signal stop two.
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

describe("a dev server's output", () => {
  it("comes line by line as wrangler prints it: a room's trace, as the benchmark counts it", async () => {
    const server = await startDevServer({ vars: { TRACE_WAKEUPS: "1" }, stateDir: await stateDir() });
    try {
      const lines: string[] = [];
      const stopReading = server.onLine((line) => lines.push(line));
      const room = `trace-${Date.now()}`;
      const ann = await WsClient.open(`${server.url.replace("http", "ws")}/rooms/${room}?name=ann`);
      await ann.next("welcome");
      const woke = () => lines.some((line) => line.includes('"event":"wake"') && line.includes(`"room":"${room}"`));
      await waitFor(woke, () => `a wake-up line of room ${room}; last lines: ${lines.slice(-5).join(" | ")}`, GONE_DEADLINE_MS);
      stopReading();
      ann.ws.terminate();
      expect(server.tail()).toContain("Ready on http://127.0.0.1:");
    } finally {
      await server.stop();
    }
  });
});
