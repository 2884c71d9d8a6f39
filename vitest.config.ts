import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    // The room's structured log lines are shown only for failing tests.
    silent: "passed-only",
    projects: [
      {
        // Inside workerd, with the Worker and its Durable Objects in the same isolate as the tests.
        plugins: [
          cloudflareTest({
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: {
              bindings: {
                // A test-only secret, as `.dev.vars` would give, so that `private-` rooms need tokens.
                ROOM_SECRET: "runtime-test-secret",
                // Small enough to fill a room in a test; no test puts more sockets in one room.
                MAX_CONNECTIONS_PER_ROOM: "8",
              },
            },
          }),
        ],
        test: { name: "runtime", include: ["test/*.test.ts"] },
      },
      {
        // From Node, with a real `ws` client against `wrangler dev`.
        test: {
          name: "e2e",
          include: ["test/e2e/*.test.ts"],
          environment: "node",
          globalSetup: ["test/e2e/wrangler-dev.ts"],
          testTimeout: 30_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
});
