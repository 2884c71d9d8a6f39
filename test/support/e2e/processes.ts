import { spawn, type ChildProcess } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, expect } from "vitest";
import { waitFor } from "../frames";

// What the tests of the dev-server helper and the benchmark (test/e2e/dev-server*.test.ts,
// test/e2e/bench.test.ts) use to run a script and look at the processes it left.

/** Deadline for a script to have its servers answering: above the helper's own 90 s, which fails first and says why. */
const SERVING_DEADLINE_MS = 120_000;
/** Deadline for a process, and the servers it started, to be gone once it is told to end. */
export const GONE_DEADLINE_MS = 30_000;

const root = fileURLToPath(new URL("../../..", import.meta.url));

/** A Node process run from the project's root, and all it printed. */
export class Run {
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
export const groupsSeen: number[] = [];

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

/** A directory for a test's servers' storage, deleted after the test. */
export async function stateDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "edge-chat-stopping-"));
  stateDirs.push(dir);
  return dir;
}

/** The processes of a group that still run (a zombie has ended), by command. */
export function members(group: number): string[] {
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
export function groupsUsing(dir: string): number[] {
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

export async function allGone(groups: number[]): Promise<void> {
  expect(groups.length).toBeGreaterThan(0);
  const left = () => groups.flatMap(members);
  await waitFor(
    () => left().length === 0,
    () => `no process left in groups ${groups.join(", ")}; left: ${left().join(", ")}`,
    GONE_DEADLINE_MS,
  );
}
