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
  pid: number;
  /** Everything wrangler printed so far, for failure messages. */
  output(): string;
  stop(): Promise<void>;
}

// wrangler exports no subpath for its CLI, so find it beside the package's main module.
const wranglerBin = join(dirname(createRequire(import.meta.url).resolve("wrangler")), "..", "bin", "wrangler.js");

/**
 * Starts `wrangler dev` on a free loopback port with fresh local storage, and
 * resolves once the Worker answers. `vars` override `[vars]` from wrangler.toml.
 */
export async function startDevServer(vars: Record<string, string> = {}): Promise<DevServer> {
  const port = await freePort();
  const inspectorPort = await freePort();
  const persist = await mkdtemp(join(tmpdir(), "edge-chat-dev-"));
  const args = [
    wranglerBin,
    "dev",
    "--ip=127.0.0.1",
    `--port=${port}`,
    `--inspector-port=${inspectorPort}`,
    `--persist-to=${persist}`,
    "--show-interactive-dev-session=false",
    ...Object.entries(vars).map(([key, value]) => `--var=${key}:${value}`),
  ];
  // The Node running this file (Node 24 under npm scripts) runs wrangler too.
  // Its own process group lets stop() end workerd along with wrangler.
  const child = spawn(process.execPath, args, { detached: true, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout!.on("data", (chunk: Buffer) => (output += chunk));
  child.stderr!.on("data", (chunk: Buffer) => (output += chunk));

  const server: DevServer = {
    url: `http://127.0.0.1:${port}`,
    pid: child.pid!,
    output: () => output,
    stop: async () => {
      await stopGroup(child);
      await rm(persist, { recursive: true, force: true });
    },
  };
  try {
    await waitUntilServing(server, child);
  } catch (error) {
    await server.stop();
    throw error;
  }
  return server;
}

async function waitUntilServing(server: DevServer, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited with ${child.exitCode}:\n${server.output()}`);
    try {
      const response = await fetch(`${server.url}/rooms/ready`);
      await response.body?.cancel();
      if (response.status === 426) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`wrangler dev did not answer within 90 s:\n${server.output()}`);
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
