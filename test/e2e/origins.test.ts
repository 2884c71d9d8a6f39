import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ONE_ADDRESS_FOR_ALL, startDevServer, type DevServer } from "../support/e2e/wrangler";
import { WsClient } from "../support/e2e/ws-client";

/**
 * As an operator would write it, spaces and a trailing slash included: the
 * Worker must read it as the two origins it names. (With ALLOWED_ORIGINS
 * empty, the Worker's own origin is the one allowed: abuse.test.ts.)
 */
const ALLOWED_ORIGINS = " https://app.example.com , http://localhost:5173/ ";

describe("ALLOWED_ORIGINS, through the Worker", () => {
  let server: DevServer;
  let wsBase: string;
  const opened: WsClient[] = [];

  beforeAll(async () => {
    // Its own wrangler dev, since the shared one runs with ALLOWED_ORIGINS empty.
    server = await startDevServer({ vars: { ...ONE_ADDRESS_FOR_ALL, ALLOWED_ORIGINS } });
    wsBase = server.url.replace(/^http/, "ws");
  }, 120_000);

  afterEach(() => {
    for (const client of opened.splice(0)) client.ws.terminate();
  });

  afterAll(async () => {
    await server?.stop();
  });

  async function welcomed(room: string, origin?: string): Promise<void> {
    const client = await WsClient.open(`${wsBase}/rooms/${room}?name=ann`, origin);
    opened.push(client);
    expect(await client.next("welcome"), `the welcome of a socket from ${origin ?? "no origin"}`).toMatchObject({ room, you: { name: "ann" } });
  }

  it.each([
    ["another site", "https://evil.example"],
    ["a look-alike of a listed host", "https://app.example.com.evil.net"],
    ["a listed host on another scheme", "http://app.example.com"],
    ["a listed host on another port", "http://localhost:5174"],
    ["an opaque origin", "null"],
  ])("refuses a browser upgrade from %s with 403 bad_origin", async (_, origin) => {
    const refused = await WsClient.refusal(`${wsBase}/rooms/origins-refused?name=ann`, origin);
    expect(refused.status).toBe(403);
    expect(JSON.parse(refused.body)).toMatchObject({ code: "bad_origin" });
  });

  it("lets in every listed origin, however its case, and clients that send none", async () => {
    await welcomed("origins-app", "https://app.example.com");
    await welcomed("origins-app-case", "https://APP.Example.com");
    await welcomed("origins-localhost", "http://localhost:5173");
    await welcomed("origins-none");
  });
});
