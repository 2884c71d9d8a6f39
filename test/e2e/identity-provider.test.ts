import { once } from "node:events";
import { createServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ONE_ADDRESS_FOR_ALL, startDevServer, type DevServer } from "../support/e2e/wrangler";
import { waitFor } from "../support/frames";
import { WsClient } from "../support/e2e/ws-client";

type Mode = "up" | "down" | "stall";

/**
 * An identity provider on 127.0.0.1, run by the test: it publishes an RS256
 * key set at /jwks.json and signs tokens with its key. `down` answers 503;
 * `stall` never answers.
 */
class ToyProvider {
  mode: Mode = "up";
  /** The mode in which each request for the key set found the provider. */
  readonly requests: Mode[] = [];
  readonly #stalled: ServerResponse[] = [];
  readonly #server = createServer((request, response) => {
    if (request.url !== "/jwks.json") return void response.writeHead(404).end();
    this.requests.push(this.mode);
    if (this.mode === "up") response.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify({ keys: [this.jwk] }));
    else if (this.mode === "down") response.writeHead(503, { "Content-Type": "text/plain" }).end("down for maintenance");
    else this.#stalled.push(response);
  });

  private constructor(
    private readonly privateKey: CryptoKey,
    private readonly jwk: JWK,
  ) {}

  static async start(): Promise<ToyProvider> {
    const { publicKey, privateKey } = await generateKeyPair("RS256");
    const provider = new ToyProvider(privateKey, { ...(await exportJWK(publicKey)), kid: "toy-1", alg: "RS256", use: "sig" });
    provider.#server.listen(0, "127.0.0.1");
    await once(provider.#server, "listening");
    return provider;
  }

  get jwksUrl(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/jwks.json`;
  }

  /** A token for `room`, valid for ten minutes from `nbf` and `iat`, which are now unless given. */
  sign(room: string, name: string, times: { nbf?: number; iat?: number } = {}): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    const { nbf = now, iat = now } = times;
    return new SignJWT({ room, name, nbf, iat, exp: nbf + 600 })
      .setProtectedHeader({ alg: "RS256", kid: "toy-1", typ: "JWT" })
      .setSubject(`toy|${name}`)
      .sign(this.privateKey);
  }

  async stop(): Promise<void> {
    for (const response of this.#stalled) response.destroy();
    this.#server.closeAllConnections();
    this.#server.close();
    await once(this.#server, "close");
  }
}

let provider: ToyProvider;
let server: DevServer;

beforeAll(async () => {
  provider = await ToyProvider.start();
  // Its own wrangler dev: which keys it has fetched is this file's to decide. No ROOM_SECRET, so every token is the provider's.
  server = await startDevServer({ vars: { ...ONE_ADDRESS_FOR_ALL, AUTH_JWKS_URL: provider.jwksUrl } });
}, 120_000);

afterAll(async () => {
  await server?.stop();
  await provider?.stop();
});

const wsUrl = (path: string) => `${server.url.replace("http", "ws")}${path}`;
const messages = (room: string, token: string) => fetch(`${server.url}/api/rooms/${room}/messages?token=${token}`);

/** Every wait below covers the key set's retry delay many times over, and a loaded machine's slowness. */
const DEADLINE_MS = 30_000;

/** Asks the HTTP API until `done` says a response is the one awaited; returns it with its body. */
async function askUntil(
  ask: () => Promise<Response>,
  done: (response: Response) => boolean,
  what: string,
): Promise<{ response: Response; body: Record<string, unknown> }> {
  let last = "no answer yet";
  const deadline = performance.now() + DEADLINE_MS;
  for (;;) {
    const response = await ask();
    const body = (await response.json()) as Record<string, unknown>;
    if (done(response)) return { response, body };
    last = `${response.status} ${JSON.stringify(body)}, provider requests: ${provider.requests.join(", ")}`;
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}; last: ${last}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

function expectUnavailable(response: Response, body: Record<string, unknown>): void {
  expect(response.status).toBe(503);
  expect(body).toMatchObject({ code: "auth_unavailable", retryAfterMs: expect.any(Number) });
  expect(response.headers.get("Retry-After")).toBe(String(Math.ceil((body.retryAfterMs as number) / 1000)));
}

// In order: which keys the server holds, and when it last failed to fetch them, carry from one test to the next.
describe("an identity provider that fails, against wrangler dev", () => {
  it("answers 503 auth_unavailable with Retry-After, not bad_token, while the provider answers 503 before any key was fetched", async () => {
    provider.mode = "down";
    const token = await provider.sign("private-x", "ann");

    const refused = await WsClient.refusal(wsUrl(`/rooms/private-x?token=${token}`));
    expect(refused.status).toBe(503);
    expect(JSON.parse(refused.body)).toMatchObject({ code: "auth_unavailable", retryAfterMs: expect.any(Number) });
    expect(provider.requests).toEqual(["down"]);

    const response = await messages("private-x", token);
    expectUnavailable(response, (await response.json()) as Record<string, unknown>);
    const asked = await fetch(`${server.url}/rooms/private-x?token=${token}`, { headers: { Accept: "application/json" } });
    expectUnavailable(asked, (await asked.json()) as Record<string, unknown>);

    // A socket's renewal is checked in its room, and says the same.
    const bob = await WsClient.open(wsUrl("/rooms/e2e-idp-public?name=bob"));
    await bob.next("welcome");
    bob.send({ type: "token", token: await provider.sign("e2e-idp-public", "bob") });
    expect(await bob.skipTo("error")).toMatchObject({ code: "auth_unavailable", retryAfterMs: expect.any(Number) });
    bob.ws.terminate();
  });

  it("shares one fetch of a stalled provider among the requests that come meanwhile, and answers each 503 auth_unavailable once it times out", async () => {
    provider.mode = "stall";
    const token = await provider.sign("private-x", "ann");
    // Until the retry delay has passed, answers come at once; then a request starts a fetch, which stalls.
    let first: Promise<Response> | null = null;
    const deadline = performance.now() + DEADLINE_MS;
    while (first === null) {
      const asked = provider.requests.length;
      let answered = false;
      const request = messages("private-x", token).finally(() => (answered = true));
      await waitFor(
        () => answered || provider.requests.length > asked,
        () => "an answer, or a request at the provider",
        DEADLINE_MS,
      );
      if (!answered) first = request;
      else if (performance.now() > deadline) throw new Error(`no request reached the provider; it saw: ${provider.requests.join(", ")}`);
      else await new Promise((resolve) => setTimeout(resolve, 250));
    }
    // These come while the fetch stalls: they wait for it rather than start their own.
    const upgrade = WsClient.refusal(wsUrl(`/rooms/private-x?token=${token}`));
    const second = messages("private-x", token);
    for (const response of [await first, await second]) expectUnavailable(response, (await response.json()) as Record<string, unknown>);
    const refused = await upgrade;
    expect(refused.status).toBe(503);
    expect(JSON.parse(refused.body)).toMatchObject({ code: "auth_unavailable" });
    expect(provider.requests.filter((mode) => mode === "stall")).toHaveLength(1);
  });

  it("admits a valid token once the provider answers", async () => {
    provider.mode = "up";
    const token = await provider.sign("private-x", "ann");
    const { response } = await askUntil(
      () => messages("private-x", token),
      (r) => r.status !== 503,
      "an answer other than 503",
    );
    expect(response.status).toBe(200);
    const ann = await WsClient.open(wsUrl(`/rooms/private-x?token=${token}`));
    expect((await ann.next("welcome")).you).toMatchObject({ name: "ann", verified: true, account: "toy|ann" });
    ann.ws.terminate();
  });

  it.each([
    ["answers 503", "down"],
    ["stalls", "stall"],
  ] as const)("keeps admitting and renewing with the keys it fetched while the provider %s", async (_, mode) => {
    provider.mode = mode;
    const asked = provider.requests.length;
    const ann = await WsClient.open(wsUrl(`/rooms/private-x?token=${await provider.sign("private-x", "ann")}`));
    expect((await ann.next("welcome")).you).toMatchObject({ name: "ann", verified: true });
    expect((await messages("private-x", await provider.sign("private-x", "ann"))).status).toBe(200);
    ann.send({ type: "token", token: await provider.sign("private-x", "ann") });
    expect(await ann.skipTo("renewed")).toMatchObject({ exp: expect.any(Number) });
    expect(provider.requests.length).toBe(asked);
    ann.ws.terminate();
  });

  it("admits a token whose nbf and iat are 2 s ahead of the server's clock", async () => {
    provider.mode = "up";
    const ahead = Math.floor(Date.now() / 1000) + 2;
    const token = await provider.sign("private-x", "cat", { nbf: ahead, iat: ahead });
    const cat = await WsClient.open(wsUrl(`/rooms/private-x?token=${token}`));
    expect((await cat.next("welcome")).you).toMatchObject({ name: "cat", verified: true, account: "toy|cat" });
    cat.ws.terminate();
  });
});
