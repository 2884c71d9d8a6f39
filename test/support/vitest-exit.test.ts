import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterEach, expect, it } from "vitest";
import { waitFor } from "./frames";

// The runtime tests' rooms log when a socket closes, often just as a file
// ends. With @cloudflare/vitest-plugin before 1.5.0 such a line could keep
// `vitest run` waiting forever after every test had passed
// (cloudflare/workers-sdk#15719): CI then ran into its 90-minute limit. This
// runs a one-file suite whose object logs after answering: with 1.4.10 it
// hung in 10 runs out of 10.

const fixture = fileURLToPath(new URL("./vitest-exit", import.meta.url));
const vitest = fileURLToPath(new URL("../../node_modules/vitest/vitest.mjs", import.meta.url));

/** Long enough for a slow machine to start workerd and run one test; the hang it looks for never ends. */
const EXIT_DEADLINE_MS = 90_000;

const started: number[] = [];
afterEach(() => {
  // The whole group: vitest and the workerd it started.
  for (const pid of started.splice(0)) {
    try {
      process.kill(-pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  }
});

it("vitest run ends when a Durable Object logs after a file's last test (workers-sdk#15719)", { timeout: EXIT_DEADLINE_MS + 10_000 }, async () => {
  const child = spawn(process.execPath, [vitest, "run", "--root", fixture, "--config", "vitest.config.ts", "--reporter", "dot"], {
    cwd: fixture,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, PWD: fixture, CI: "true", NO_COLOR: "1" },
  });
  started.push(child.pid!);
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk));
  let code: number | null = null;
  child.on("exit", (exitCode) => (code = exitCode ?? -1));

  await waitFor(
    () => code !== null,
    () => `the nested vitest run to exit; it printed:\n${output.slice(-4000)}`,
    EXIT_DEADLINE_MS,
  );
  expect(code, output).toBe(0);
  expect(output).toMatch(/Tests\s+1 passed/);
});
