import type { Env as WorkerEnv } from "../src/platform/env";

// Types `env` and `exports` from `cloudflare:test` and `cloudflare:workers` for the tests.
declare global {
  namespace Cloudflare {
    interface Env extends WorkerEnv {}
    interface GlobalProps {
      mainModule: typeof import("../src/index");
      durableNamespaces: "Room" | "Shard";
    }
  }
}
