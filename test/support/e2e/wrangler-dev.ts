import { execFile } from "node:child_process";
import { promisify } from "node:util";
import type { TestProject } from "vitest/node";
import { startBrowsers } from "./chromium";
import { ONE_ADDRESS_FOR_ALL, startDevServer } from "./wrangler";

declare module "vitest" {
  interface ProvidedContext {
    devUrl: string;
  }
}

/** The secret the end-to-end dev server signs `private-` room tokens with, as `.dev.vars` would set it. */
export const E2E_ROOM_SECRET = "e2e-room-secret";

/**
 * One `wrangler dev` for the whole end-to-end project, and the browser tests'
 * Chromium and server (./chromium.ts), started side by side and stopped when
 * the project ends.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // The pages and the client library, built once: the servers run without the
  // project's custom build (see prebuilt() in ./wrangler.ts), and the terminals
  // without their prechat build.
  await promisify(execFile)("npm", ["run", "-s", "build"]);
  // The tests' clients all come from 127.0.0.1; per-address limits are tested in the runtime project.
  // Ten sockets to an object, so that a crowd of 45 spreads over the room and four shards.
  // And batches whenever a socket that asked (the page, the terminal chat, ChatClient) has two frames within a window,
  // however quiet the room: what those clients do here, they do through batches.
  const [server, browsers] = await Promise.allSettled([
    startDevServer({ vars: { ...ONE_ADDRESS_FOR_ALL, ROOM_SECRET: E2E_ROOM_SECRET, SHARD_SIZE: "10", BATCH_ABOVE: "0" } }),
    startBrowsers(),
  ]);
  const stop = async () => {
    await Promise.all([server.status === "fulfilled" && server.value.stop(), browsers.status === "fulfilled" && browsers.value?.stop()]);
  };
  if (server.status === "rejected" || browsers.status === "rejected") {
    await stop();
    throw server.status === "rejected" ? server.reason : (browsers as PromiseRejectedResult).reason;
  }
  project.provide("devUrl", server.value.url);
  project.provide("browsers", browsers.value?.browsers ?? null);
  return stop;
}
