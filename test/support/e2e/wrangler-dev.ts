import type { TestProject } from "vitest/node";
import { ONE_ADDRESS_FOR_ALL, startDevServer } from "./wrangler";

declare module "vitest" {
  interface ProvidedContext {
    devUrl: string;
  }
}

/** The secret the end-to-end dev server signs `private-` room tokens with, as `.dev.vars` would set it. */
export const E2E_ROOM_SECRET = "e2e-room-secret";

/** One `wrangler dev` for the whole end-to-end project, stopped by PID when it ends. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // The tests' clients all come from 127.0.0.1; per-address limits are tested in the runtime project.
  // Ten sockets to an object, so that a crowd of 45 spreads over the room and four shards.
  // And batches whenever a socket that asked (the page, the terminal chat, ChatClient) has two frames within a window,
  // however quiet the room: what those clients do here, they do through batches.
  const server = await startDevServer({ vars: { ...ONE_ADDRESS_FOR_ALL, ROOM_SECRET: E2E_ROOM_SECRET, SHARD_SIZE: "10", BATCH_ABOVE: "0" } });
  project.provide("devUrl", server.url);
  return () => server.stop();
}
