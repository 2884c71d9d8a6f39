import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

export interface DevServer {
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** The process group of wrangler and its workerd processes. */
  pid(): number;
  /** Everything wrangler printed so far, for failure messages. */
  output(): string;
  /** Stops wrangler and starts it again on the same port and storage: every socket drops, nothing stored is lost. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

// wrangler exports no subpath for its CLI, so find it beside the package's main module.
const wranglerBin = join(dirname(createRequire(import.meta.url).resolve("wrangler")), "..", "bin", "wrangler.js");

export interface DevServerOptions {
  /** Override `[vars]` from the config. */
  vars?: Record<string, string>;
  /** Another Worker's wrangler.toml (the benchmark's baseline); the project's by default. */
  config?: string;
  /** Where the fresh local storage goes; the system's temporary directory by default. */
  stateDir?: string;
}

/**
 * Starts `wrangler dev` on a free loopback port with fresh local storage, and
 * resolves once the Worker answers.
 */
export async function startDevServer({ vars = {}, config, stateDir = tmpdir() }: DevServerOptions = {}): Promise<DevServer> {
  const port = await freePort();
  const persist = await mkdtemp(join(stateDir, "edge-chat-dev-"));
  const url = `http://127.0.0.1:${port}`;
  let output = "";
  let child: ChildProcess;

  const start = async () => {
    const args = [
      wranglerBin,
      "dev",
      "--ip=127.0.0.1",
      `--port=${port}`,
      `--inspector-port=${await freePort()}`,
      `--persist-to=${persist}`,
      "--show-interactive-dev-session=false",
      ...(config === undefined ? [] : [`--config=${config}`]),
      ...Object.entries(vars).map(([key, value]) => `--var=${key}:${value}`),
    ];
    // The Node running this file (Node 24 under npm scripts) runs wrangler too.
    // Its own process group lets stopGroup() end workerd along with wrangler.
    child = spawn(process.execPath, args, { detached: true, stdio: ["ignore", "pipe", "pipe"] });
    child.stdout!.on("data", (chunk: Buffer) => (output += chunk));
    child.stderr!.on("data", (chunk: Buffer) => (output += chunk));
    await waitUntilServing(url, child, () => output);
  };

  const server: DevServer = {
    url,
    pid: () => child.pid!,
    output: () => output,
    restart: async () => {
      await stopGroup(child);
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

async function waitUntilServing(url: string, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited with ${child.exitCode}:\n${output()}`);
    try {
      const response = await fetch(`${url}/rooms/ready`);
      await response.body?.cancel();
      if (response.status < 500) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`wrangler dev did not answer within 90 s:\n${output()}`);
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

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      probe.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}
