import type { TestProject } from "vitest/node";
import { startDevServer } from "./wrangler";

declare module "vitest" {
  interface ProvidedContext {
    devUrl: string;
  }
}

/** One `wrangler dev` for the whole end-to-end project, stopped by PID when it ends. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const server = await startDevServer();
  project.provide("devUrl", server.url);
  return () => server.stop();
}
