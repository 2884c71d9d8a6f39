// node test/support/e2e/serve.ts --servers=N --state-dir=DIR --end=wait|throw|reject
// Starts dev servers through the helper, prints {"groups":[...]} once they
// all answer, and then waits, or fails as a crashing benchmark would: the
// tests in test/e2e/dev-server.test.ts end it and look at what it left.
// The servers run the benchmark's baseline relay: the helper treats every
// config alike, and the relay starts in half the time and CPU of the room,
// which runs its custom build (npm run build) and serves assets.
import { parseArgs } from "node:util";
import { startDevServer } from "./wrangler.ts";

const { values } = parseArgs({
  options: {
    servers: { type: "string", default: "1" },
    "state-dir": { type: "string" },
    end: { type: "string", default: "wait" },
  },
});
const servers = await Promise.all(
  Array.from({ length: Number(values.servers) }, () => startDevServer({ config: "bench/relay/wrangler.toml", stateDir: values["state-dir"] })),
);
console.log(JSON.stringify({ groups: servers.map((server) => server.pid()) }));
const broke = new Error("the script broke");
if (values.end === "throw") {
  setTimeout(() => {
    throw broke;
  }, 100);
} else if (values.end === "reject") {
  setTimeout(() => void Promise.reject(broke), 100);
}
