import type { TestProject } from "vitest/node";
import { startDevServer } from "./wrangler";

declare module "vitest" {
  interface ProvidedContext {
    devUrl: string;
  }
}

/** The secret the end-to-end dev server signs `private-` room tokens with, as `.dev.vars` would set it. */
export const E2E_ROOM_SECRET = "e2e-room-secret";

/** One `wrangler dev` for the whole end-to-end project, stopped by PID when it ends. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const server = await startDevServer({ vars: { ROOM_SECRET: E2E_ROOM_SECRET } });
  project.provide("devUrl", server.url);
  return () => server.stop();
}
