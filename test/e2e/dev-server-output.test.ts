import { describe, expect, it } from "vitest";
import { waitFor } from "../support/frames";
import { GONE_DEADLINE_MS, stateDir } from "../support/e2e/processes";
import { startDevServer } from "../support/e2e/wrangler";
import { WsClient } from "../support/e2e/ws-client";

// What a caller of the dev-server helper reads of a server's output.

describe("a dev server's output", () => {
  it("comes line by line as wrangler prints it: a room's trace, as the benchmark counts it", async () => {
    const server = await startDevServer({ vars: { TRACE_WAKEUPS: "1" }, stateDir: await stateDir() });
    try {
      const lines: string[] = [];
      const stopReading = server.onLine((line) => lines.push(line));
      const room = `trace-${Date.now()}`;
      const ann = await WsClient.open(`${server.url.replace("http", "ws")}/rooms/${room}?name=ann`);
      await ann.next("welcome");
      const woke = () => lines.some((line) => line.includes('"event":"wake"') && line.includes(`"room":"${room}"`));
      await waitFor(woke, () => `a wake-up line of room ${room}; last lines: ${lines.slice(-5).join(" | ")}`, GONE_DEADLINE_MS);
      stopReading();
      ann.ws.terminate();
      expect(server.tail()).toContain("Ready on http://127.0.0.1:");
    } finally {
      await server.stop();
    }
  });
});
