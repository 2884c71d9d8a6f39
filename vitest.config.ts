import { availableParallelism } from "node:os";
import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

// expect.poll gives up after 1 s by default, which a loaded machine can take
// just to render a page; 10 s, as for the tests' own frame waits.
const expectations = { poll: { timeout: 10_000 } };

// Every spy is restored before the next test starts, in every project: no
// test can lean on a mock that an earlier one left behind.
const mocks = { restoreMocks: true };

// Every wait in a test has its own deadline that names what it waited for;
// the test timeout is only a backstop above those, for a loaded machine.
// A project's files run one after another in the runtimes they share
// (isolate: false) instead of each starting its own: 36 workerd starts, and
// loading the tests into each, cost about 60 s of CPU, an eighth of the
// suite's. Storage and the objects in it are therefore shared by those
// files, so every test uses rooms of its own (uniqueRoom in
// test/support/client.ts), as it must within a file anyway.
const inWorkerd = { testTimeout: 30_000, expect: expectations, ...mocks, isolate: false };

export default defineConfig({
  test: {
    // The room's structured log lines are shown only for failing tests.
    silent: "passed-only",
    // Which also hides why a test was skipped: this reporter says it at the end.
    // A run that never ends after its last file fails in two minutes, saying so.
    reporters: ["default", "./test/support/skip-reasons.ts", "./test/support/stalls.ts"],
    // At least three files at a time, where Vitest would run one on a 2-core
    // machine: the end-to-end files mostly wait on servers and browsers, and
    // the other workers run other files meanwhile (243 s → 172 s on 2 cores
    // with one kept busy).
    maxWorkers: Math.max(3, availableParallelism() - 1),
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
                // Below that, so that one address can fill its share. Test clients each
                // have their own address unless a test says otherwise (test/support/client.ts).
                MAX_CONNECTIONS_PER_ADDRESS: "3",
              },
            },
          }),
        ],
        test: {
          name: "runtime",
          include: ["test/*.test.ts"],
          exclude: ["test/presence.test.ts", "test/shards.test.ts", "test/batching.test.ts"],
          ...inWorkerd,
        },
      },
      {
        // Rooms spread over several objects: three sockets to an object, so a
        // dozen clients fill the room and three shards. The property test runs
        // here too, with its clients on four objects.
        plugins: [
          cloudflareTest({
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: { bindings: { SHARD_SIZE: "3", MAX_CONNECTIONS_PER_ROOM: "40", ROOM_SECRET: "shards-test-secret" } },
          }),
        ],
        test: { name: "shards", include: ["test/shards.test.ts", "test/resume-property.test.ts"], ...inWorkerd },
      },
      {
        // Presence batches in crowded rooms. The window never ends by itself
        // here, so a test decides where a batch ends (a message, a tick) and
        // what happens in the middle of one, however slow the machine.
        plugins: [
          cloudflareTest({
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: {
              bindings: {
                PRESENCE_BATCH_MS: "3600000",
                PRESENCE_LIST_LIMIT: "10",
                ANNOUNCE_LIMIT: "60",
                MAX_CONNECTIONS_PER_ROOM: "70",
              },
            },
          }),
        ],
        test: { name: "presence", include: ["test/presence.test.ts"], ...inWorkerd },
      },
      {
        // Batches whenever a socket asks, and a batch window that never ends
        // by itself: a test decides where a window ends for a socket (by
        // switching it out of batching, or closing it), however slow the
        // machine. Three sockets to an object, so that a fourth is on a shard.
        plugins: [
          cloudflareTest({
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: {
              bindings: { BATCH_ABOVE: "0", BATCH_MS: "3600000", SHARD_SIZE: "3", MAX_CONNECTIONS_PER_ROOM: "20", ROOM_SECRET: "batching-test-secret" },
            },
          }),
        ],
        test: { name: "batching", include: ["test/batching.test.ts"], ...inWorkerd },
      },
      {
        // edge-chat/client in Node, against a fake WebSocket and fake timers:
        // what a real room cannot be made to do on cue (answers out of
        // order, a pong that never comes) and pacing checked to the millisecond.
        test: { name: "client", include: ["test/client/*.test.ts"], environment: "node", testTimeout: 30_000, expect: expectations, ...mocks },
      },
      {
        // The test helpers' own logic, in Node, without a server.
        test: { name: "support", include: ["test/support/**/*.test.ts"], environment: "node", ...mocks },
      },
      {
        // From Node, with a real `ws` client against `wrangler dev`.
        test: {
          name: "e2e",
          include: ["test/e2e/*.test.ts"],
          environment: "node",
          globalSetup: ["test/support/e2e/wrangler-dev.ts"],
          expect: expectations,
          ...mocks,
          // Above the 30-s deadlines of Playwright and of the tests' own waits, so
          // that those fail first and say what they waited for.
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
