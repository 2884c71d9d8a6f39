import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

export interface DevServer {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** The process group of wrangler and its workerd processes. */
  pid(): number;
  /** Everything wrangler printed so far, for failure messages. */
  output(): string;
  /**
   * Stops wrangler and starts it again on the same port: every socket drops.
   * Its storage is kept, or with `wipe` deleted, as if every room were lost.
   */
  restart(options?: { wipe?: boolean }): Promise<void>;
  stop(): Promise<void>;
}

// wrangler exports no subpath for its CLI, so find it beside the package's main module.
const wranglerBin = join(dirname(createRequire(import.meta.url).resolve("wrangler")), "..", "bin", "wrangler.js");

/**
 * Every client of a local server comes from 127.0.0.1, which the room counts
 * as one address: a server that many test or benchmark clients share lifts
 * the per-address limits with these, and says so.
 */
export const ONE_ADDRESS_FOR_ALL: Record<string, string> = {
  MAX_CONNECTIONS_PER_ADDRESS: "100000",
  CONNECTS_PER_MINUTE: "100000",
  ADDRESS_SHARE: "100000",
};

export interface DevServerOptions {
  /** Override `[vars]` from the config. */
  vars?: Record<string, string>;
  /** Another Worker's wrangler.toml (the benchmark's baseline); the project's by default. */
  config?: string;
  /** Where the fresh local storage goes; the system's temporary directory by default. */
  stateDir?: string;
}

/**
 * Starts `wrangler dev` on a loopback port that the system picks, with fresh
 * local storage, and resolves once the Worker answers.
 */
export async function startDevServer({ vars = {}, config, stateDir = tmpdir() }: DevServerOptions = {}): Promise<DevServer> {
  const persist = await mkdtemp(join(stateDir, "edge-chat-dev-"));
  // Port 0 on the first start: a port probed free and handed over later can be taken in between.
  let port = 0;
  let output = "";
  let child: ChildProcess;

  const start = async () => {
    const args = [
      wranglerBin,
      "dev",
      "--ip=127.0.0.1",
      `--port=${port}`,
      "--inspector-port=0",
      `--persist-to=${persist}`,
      "--show-interactive-dev-session=false",
      ...(config === undefined ? [] : [`--config=${config}`]),
      ...Object.entries(vars).map(([key, value]) => `--var=${key}:${value}`),
    ];
    const printed = output.length;
    // The Node running this file (Node 24 under npm scripts) runs wrangler too.
    // Its own process group lets stopGroup() end workerd along with wrangler.
    child = spawn(process.execPath, args, { detached: true, stdio: ["ignore", "pipe", "pipe"] });
    child.stdout!.on("data", (chunk: Buffer) => (output += chunk));
    child.stderr!.on("data", (chunk: Buffer) => (output += chunk));
    port = await readyPort(child, () => output.slice(printed));
    await waitUntilServing(`http://127.0.0.1:${port}`, child, () => output.slice(printed));
  };

  const server: DevServer = {
    get url() {
      return `http://127.0.0.1:${port}`;
    },
    pid: () => child.pid!,
    output: () => output,
    // The same port again, so that clients reconnect to where they were.
    restart: async ({ wipe = false } = {}) => {
      await stopGroup(child);
      if (wipe) await rm(persist, { recursive: true, force: true });
      await start();
    },
    stop: async () => {
      await stopGroup(child);
      await rm(persist, { recursive: true, force: true });
    },
  };
  try {
    await start();
  } catch (error) {
    await server.stop();
    throw error;
  }
  return server;
}

/** Deadline for wrangler to build, start workerd and answer; a loaded 2-core machine can take a while. */
const START_DEADLINE_MS = 90_000;

/** The port from wrangler's "Ready on http://127.0.0.1:<port>" line. */
async function readyPort(child: ChildProcess, output: () => string): Promise<number> {
  const port = () => /Ready on http:\/\/127\.0\.0\.1:(\d+)/.exec(output())?.[1];
  await until(() => port() !== undefined, child, output, 'its "Ready on" line');
  return Number(port());
}

async function waitUntilServing(url: string, child: ChildProcess, output: () => string): Promise<void> {
  let last = "no answer yet";
  const answers = async () => {
    try {
      const response = await fetch(`${url}/rooms/ready`);
      await response.body?.cancel();
      last = `status ${response.status}`;
      return response.status < 500;
    } catch (error) {
      last = String(error);
      return false;
    }
  };
  await until(answers, child, output, `an answer from ${url} (last: ${last})`);
}

/** Polls `ready` until it holds, wrangler exits, or the start deadline passes; failures quote wrangler's output. */
async function until(ready: () => boolean | Promise<boolean>, child: ChildProcess, output: () => string, what: string): Promise<void> {
  const deadline = Date.now() + START_DEADLINE_MS;
  while (!(await ready())) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited with ${child.exitCode} before ${what}:\n${output()}`);
    if (Date.now() > deadline) throw new Error(`wrangler dev gave no ${what} within ${START_DEADLINE_MS / 1000} s:\n${output()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function stopGroup(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, "exit");
  const kill = (signal: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, signal);
    } catch {
      // Already gone.
    }
  };
  kill("SIGTERM");
  const timer = setTimeout(() => kill("SIGKILL"), 5_000);
  await exited;
  clearTimeout(timer);
}
