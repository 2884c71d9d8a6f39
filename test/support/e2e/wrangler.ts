import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { rmSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { constants, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { LineSplitter, Tail } from "./output.ts";

export interface DevServer {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** The process group of wrangler and its workerd processes. */
  pid(): number;
  /** The last 64 KiB that wrangler printed, for failure messages. */
  tail(): string;
  /**
   * Calls `listener` with each line that wrangler prints from now on, on
   * stdout or stderr, until the returned function is called: how a caller
   * counts trace lines without holding the output.
   */
  onLine(listener: (line: string) => void): () => void;
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
  /** Another Worker's wrangler.toml (the benchmark's baseline); the project's by default, without its custom build (see `prebuilt`). */
  config?: string;
  /** Where the fresh local storage goes; the system's temporary directory by default. */
  stateDir?: string;
}

const root = fileURLToPath(new URL("../../..", import.meta.url));

/**
 * The project's wrangler.toml, written into `dir`, without its custom build
 * (`[build]`: `npm run build`, for people running `wrangler dev`) and with its
 * paths made absolute. Every server start and restart would run that build
 * again, seconds of CPU each, and rewrite the built pages and client library
 * while other servers' pages and terminals load them. `npm test` builds them
 * once before the tests, and so does the end-to-end project's global setup;
 * the benchmark needs neither.
 */
async function prebuilt(dir: string): Promise<string> {
  const source = await readFile(join(root, "wrangler.toml"), "utf8");
  let changes = 0;
  const absolute = (key: string) => (_: string, path: string) => {
    changes++;
    return `${key} = ${JSON.stringify(resolve(root, path))}`;
  };
  const toml = source
    // The table and every line up to the next table.
    .replace(/^\[build\]\n(?:[^[\n].*\n|\n)*/m, () => {
      changes++;
      return "";
    })
    .replace(/^main = "(.+)"$/m, absolute("main"))
    .replace(/^directory = "(.+)"$/m, absolute("directory"));
  if (changes !== 3)
    throw new Error("wrangler.toml no longer has one [build], main and assets directory each: update prebuilt() in test/support/e2e/wrangler.ts");
  await mkdir(dir, { recursive: true });
  const path = join(dir, "wrangler.toml");
  await writeFile(path, toml);
  return path;
}

/** How much of wrangler's output a server keeps for failure messages, and the longest line it holds. */
const OUTPUT_LIMIT = 64 * 1024;

/**
 * Runs wrangler (`"$@"`) in a group with a lifeline: a shell that waits on
 * this process's end of a pipe, which closes however this process ends, and
 * then ends the group: SIGTERM, so that wrangler can clean up after itself,
 * and SIGKILL 5 s later. It ignores SIGTERM itself to live until then; a
 * stop's SIGKILL ends it. A handler can stop servers on a signal or an exit,
 * but not on SIGKILL, and Vitest's watchdog SIGKILLs the workers that run
 * the test files when the main process is interrupted.
 */
const LIFELINE = 'exec 3<&0 </dev/null; (trap "" TERM; read -r _ <&3; kill -TERM 0; sleep 5; kill -KILL 0) >/dev/null 2>&1 & exec "$@" 3<&-';

/**
 * Node's cache of compiled modules, for every wrangler the tests and the
 * benchmark start: with it, one `wrangler dev` spends 2.5–3 s of CPU before
 * it serves instead of 3.8 s, most of the difference in compiling wrangler's
 * bundle, and the suite starts about twenty.
 */
const COMPILE_CACHE = join(root, "node_modules", ".cache", "wrangler-compile");

/**
 * Starts `wrangler dev` on a loopback port that the system picks, with fresh
 * local storage, and resolves once the Worker answers. The server is stopped
 * with this process if nothing stops it before (see `live`).
 */
export async function startDevServer({ vars = {}, config, stateDir = tmpdir() }: DevServerOptions = {}): Promise<DevServer> {
  const persist = await mkdtemp(join(stateDir, "edge-chat-dev-"));
  // Port 0 on the first start: a port probed free and handed over later can be taken in between.
  let port = 0;
  let child: ChildProcess;
  const tail = new Tail(OUTPUT_LIMIT);
  const listeners = new Set<(line: string) => void>();
  const onLine = (listener: (line: string) => void) => {
    listeners.add(listener);
    return () => void listeners.delete(listener);
  };

  const start = async () => {
    // In the storage directory, which a wipe deletes, and which goes with the server.
    const configPath = config ?? (await prebuilt(persist));
    const args = [
      wranglerBin,
      "dev",
      "--ip=127.0.0.1",
      `--port=${port}`,
      "--inspector-port=0",
      `--persist-to=${persist}`,
      "--show-interactive-dev-session=false",
      `--config=${configPath}`,
      ...Object.entries(vars).map(([key, value]) => `--var=${key}:${value}`),
    ];
    // The Node running this file (Node 24 under npm scripts) runs wrangler too,
    // through the lifeline's shell, which becomes it. Its own process group
    // lets stopGroup() end workerd along with wrangler.
    const started = spawn("/bin/sh", ["-c", LIFELINE, "wrangler", process.execPath, ...args], {
      detached: true,
      stdio: ["pipe", "pipe", "pipe"],
      env: { ...process.env, NODE_COMPILE_CACHE: process.env.NODE_COMPILE_CACHE ?? COMPILE_CACHE },
    });
    child = started;
    // A wrangler that ended by itself takes what it left in its group along.
    started.on("exit", () => started.stdin!.destroy());
    for (const stream of [started.stdout!, started.stderr!]) {
      const lines = new LineSplitter(OUTPUT_LIMIT, (line) => {
        for (const listener of listeners) listener(line);
      });
      stream.setEncoding("utf8");
      stream.on("data", (chunk: string) => {
        tail.push(chunk);
        lines.push(chunk);
      });
      stream.on("end", () => lines.end());
    }
    let ready: number | undefined;
    const stopReading = onLine((line) => {
      const announced = /Ready on http:\/\/127\.0\.0\.1:(\d+)/.exec(line)?.[1];
      if (announced !== undefined) ready = Number(announced);
    });
    try {
      await until(
        () => ready !== undefined,
        started,
        tail,
        () => 'its "Ready on" line',
      );
    } finally {
      stopReading();
    }
    port = ready!;
    await waitUntilServing(`http://127.0.0.1:${port}`, started, tail);
  };

  const server: DevServer = {
    get url() {
      return `http://127.0.0.1:${port}`;
    },
    pid: () => child.pid!,
    tail: () => String(tail),
    onLine,
    // The same port again, so that clients reconnect to where they were.
    restart: async ({ wipe = false } = {}) => {
      await stopGroup(child);
      if (wipe) await rm(persist, { recursive: true, force: true });
      await start();
    },
    stop: async () => {
      await stopGroup(child);
      await rm(persist, { recursive: true, force: true });
      forget();
    },
  };
  const forget = track({
    stop: server.stop,
    signal: (signal) => {
      signalGroup(child, signal);
      rmSync(persist, { recursive: true, force: true });
    },
  });
  try {
    await start();
  } catch (error) {
    await server.stop();
    throw error;
  }
  return server;
}

/** A server as its process's shutdown sees it. */
interface Live {
  /** Stops wrangler and deletes its storage. */
  stop(): Promise<void>;
  /** Signals wrangler's group and deletes its storage at once, for a process that may not live to wait. */
  signal(signal: NodeJS.Signals): void;
}

/**
 * The servers this process started and has not stopped. While there are
 * any, an interrupt, a termination or a hangup stops them all and then
 * exits with 128 + the signal's number, as a shell reports it; an exit of
 * any other kind (an uncaught error or unhandled rejection included, which
 * exit with 1) ends them on the way out.
 */
const live = new Set<Live>();
const SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;
/** The exit code a signal asked for. */
let signalled: number | undefined;

function onSignal(signal: NodeJS.Signals): void {
  // Asked again while stopping: leave now, and the exit hook kills what is left.
  if (signalled !== undefined) process.exit(signalled);
  signalled = 128 + constants.signals[signal];
  // Vitest's workers may be SIGKILLed right after this (see LIFELINE): every
  // server has heard and lost its storage before the first wait.
  for (const server of live) server.signal("SIGTERM");
  void Promise.allSettled([...live].map((server) => server.stop())).then(() => process.exit(signalled));
}

function onExit(): void {
  // What was talking to the servers may fail as they go, and crash the
  // process before they are all stopped: it still ends as the signal asked.
  if (signalled !== undefined) process.exitCode = signalled;
  // No waiting here, and no need: the lifeline kills what SIGTERM leaves.
  for (const server of live) server.signal("SIGTERM");
}

/** Adds a server to `live`, with the handlers while it is not empty; returns what takes it out. */
function track(server: Live): () => void {
  if (live.size === 0) {
    for (const signal of SIGNALS) process.on(signal, onSignal);
    process.on("exit", onExit);
  }
  live.add(server);
  return () => {
    // Once a signal came, the handlers stay until the exit: what else stops
    // a server (a failing benchmark's own cleanup) must not drop them first.
    if (!live.delete(server) || live.size > 0 || signalled !== undefined) return;
    for (const signal of SIGNALS) process.off(signal, onSignal);
    process.off("exit", onExit);
  };
}

/** Deadline for wrangler to build, start workerd and answer; a loaded 2-core machine can take a while. */
const START_DEADLINE_MS = 90_000;

async function waitUntilServing(url: string, child: ChildProcess, tail: Tail): Promise<void> {
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
  await until(answers, child, tail, () => `an answer from ${url} (last: ${last})`);
}

/** Polls `ready` until it holds, wrangler exits, or the start deadline passes; failures quote wrangler's last output. */
async function until(ready: () => boolean | Promise<boolean>, child: ChildProcess, tail: Tail, what: () => string): Promise<void> {
  const deadline = Date.now() + START_DEADLINE_MS;
  while (!(await ready())) {
    const ended = child.exitCode ?? child.signalCode;
    if (ended !== null) throw new Error(`wrangler dev exited with ${ended} before ${what()}:\n${tail}`);
    if (Date.now() > deadline) throw new Error(`wrangler dev gave no ${what()} within ${START_DEADLINE_MS / 1000} s:\n${tail}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function stopGroup(child: ChildProcess): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    const exited = once(child, "exit");
    signalGroup(child, "SIGTERM");
    const timer = setTimeout(() => signalGroup(child, "SIGKILL"), 5_000);
    await exited;
    clearTimeout(timer);
  }
  // What wrangler left in its group (a workerd it did not wait for, the lifeline) ends with it.
  signalGroup(child, "SIGKILL");
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, signal);
  } catch {
    // Already gone.
  }
}
