import { errors, exportJWK, generateKeyPair, type JWK } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { KEY_SET_TIMING, KeySet, KeysUnavailable, type KeySetIo, type KeySetTiming } from "../src/auth/key-set";
import { waitFor } from "./support/frames";

const { maxAgeMs, retryMs, kidCooldownMs } = KEY_SET_TIMING;
const JWKS_URL = "https://idp.test/jwks.json";

let jwks: Record<string, JWK>;

beforeAll(async () => {
  const jwk = async (kid: string) => ({ ...(await exportJWK((await generateKeyPair("ES256")).publicKey)), kid, alg: "ES256" });
  jwks = { k1: await jwk("k1"), k2: await jwk("k2") };
});

/** How a stand-in provider answers each fetch. */
type Mode = "answer" | "hold" | "stall" | "dead";

/**
 * An identity provider and a clock that a test drives: it answers with its
 * `status` and `keys`; holds answers until `release()`; stalls until the
 * fetch is aborted; or, `dead`, never settles at all, as a fetch whose
 * request was cancelled in Workers.
 */
class Provider {
  now = 1_700_000_000_000;
  status = 200;
  keys: JWK[] = [jwks.k1!];
  mode: Mode = "answer";
  readonly fetches: AbortSignal[] = [];
  readonly #held: Array<() => void> = [];

  readonly io: KeySetIo = {
    now: () => this.now,
    fetch: (url, { signal }) => {
      expect(url).toBe(JWKS_URL);
      this.fetches.push(signal);
      return new Promise((resolve, reject) => {
        const answer = () => resolve(this.status === 200 ? Response.json({ keys: this.keys }) : new Response("down for maintenance", { status: this.status }));
        if (this.mode === "dead") return;
        signal.addEventListener("abort", () => reject(signal.reason));
        if (this.mode === "answer") answer();
        else if (this.mode === "hold") this.#held.push(answer);
      });
    },
  };

  release(): void {
    for (const answer of this.#held.splice(0)) answer();
  }

  keySet(timing: Partial<KeySetTiming> = {}): KeySet {
    return new KeySet(JWKS_URL, this.io, { ...KEY_SET_TIMING, ...timing });
  }
}

/** The key a token signed under `kid` would be checked with. */
const keyFor = (set: KeySet, kid: string) => set.getKey({ alg: "ES256", kid }, { payload: "", signature: "" });

async function unavailable(attempt: Promise<unknown>): Promise<KeysUnavailable> {
  const error = await attempt.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(KeysUnavailable);
  return error as KeysUnavailable;
}

describe("the identity provider's key set", () => {
  it("is fetched once for verifications that need it at the same time", async () => {
    const provider = new Provider();
    provider.mode = "hold";
    const set = provider.keySet();
    const keys = Array.from({ length: 5 }, () => keyFor(set, "k1"));
    expect(provider.fetches).toHaveLength(1);
    provider.release();
    for (const key of await Promise.all(keys)) expect(key).toMatchObject({ type: "public", algorithm: { name: "ECDSA" } });
    expect(provider.fetches).toHaveLength(1);
  });

  it("without keys, answers a failed fetch with KeysUnavailable and when the next fetch may start, and fetches no sooner", async () => {
    const provider = new Provider();
    provider.status = 503;
    const set = provider.keySet();
    expect((await unavailable(keyFor(set, "k1"))).retryAfterMs).toBe(retryMs);
    provider.now += 2_000;
    expect((await unavailable(keyFor(set, "k1"))).retryAfterMs).toBe(retryMs - 2_000);
    expect(provider.fetches).toHaveLength(1);

    provider.now += retryMs - 2_000;
    provider.status = 200;
    await expect(keyFor(set, "k1")).resolves.toMatchObject({ type: "public" });
    expect(provider.fetches).toHaveLength(2);
  });

  it("counts an answer that is no key set as a failed fetch", async () => {
    const provider = new Provider();
    provider.io.fetch = async () => new Response("<html>maintenance</html>", { headers: { "Content-Type": "text/html" } });
    expect((await unavailable(keyFor(provider.keySet(), "k1"))).message).toMatch(/could not be fetched/);
  });

  it("gives up on a fetch after timeoutMs, and aborts it", async () => {
    const provider = new Provider();
    provider.mode = "stall";
    const set = provider.keySet({ timeoutMs: 50 });
    const error = await unavailable(keyFor(set, "k1"));
    expect(error.retryAfterMs).toBe(retryMs);
    const signal = provider.fetches[0]!;
    await waitFor(
      () => signal.aborted,
      () => "the stalled fetch to be aborted",
    );
  });

  it("stops waiting for a fetch that never settles, and the next caller starts another", async () => {
    const provider = new Provider();
    provider.mode = "dead";
    const set = provider.keySet({ timeoutMs: 50 });
    const first = keyFor(set, "k1");
    const joined = keyFor(set, "k1");
    await unavailable(first);
    await unavailable(joined);
    expect(provider.fetches).toHaveLength(1);

    provider.now += retryMs;
    provider.mode = "answer";
    await expect(keyFor(set, "k1")).resolves.toMatchObject({ type: "public" });
    expect(provider.fetches).toHaveLength(2);
  });

  it("keeps serving the keys it has while a refresh after maxAgeMs fails, and retries the refresh after retryMs", async () => {
    const provider = new Provider();
    const set = provider.keySet();
    await keyFor(set, "k1");
    provider.now += maxAgeMs;
    provider.status = 503;
    await expect(keyFor(set, "k1")).resolves.toMatchObject({ type: "public" });
    expect(provider.fetches).toHaveLength(2);
    provider.now += retryMs - 1;
    await expect(keyFor(set, "k1")).resolves.toMatchObject({ type: "public" });
    expect(provider.fetches).toHaveLength(2);

    provider.now += 1;
    provider.status = 200;
    provider.keys = [jwks.k2!];
    await expect(keyFor(set, "k2")).resolves.toMatchObject({ type: "public" });
    expect(provider.fetches).toHaveLength(3);
  });

  it("serves the keys it has while a refresh stalls, after timeoutMs", async () => {
    const provider = new Provider();
    const set = provider.keySet({ timeoutMs: 50 });
    await keyFor(set, "k1");
    provider.now += maxAgeMs;
    provider.mode = "stall";
    await expect(keyFor(set, "k1")).resolves.toMatchObject({ type: "public" });
    expect(provider.fetches).toHaveLength(2);
  });

  it("refreshes after maxAgeMs: a key the provider removed stops counting, one it added starts", async () => {
    const provider = new Provider();
    const set = provider.keySet();
    await keyFor(set, "k1");
    provider.keys = [jwks.k2!];
    provider.now += maxAgeMs - 1;
    await expect(keyFor(set, "k1")).resolves.toMatchObject({ type: "public" });
    expect(provider.fetches).toHaveLength(1);

    provider.now += 1;
    await expect(keyFor(set, "k1")).rejects.toBeInstanceOf(errors.JWKSNoMatchingKey);
    await expect(keyFor(set, "k2")).resolves.toMatchObject({ type: "public" });
    expect(provider.fetches).toHaveLength(2);
  });

  it("refetches for a key id it lacks at most once per kidCooldownMs", async () => {
    const provider = new Provider();
    const set = provider.keySet();
    await keyFor(set, "k1");
    provider.keys = [jwks.k1!, jwks.k2!];
    for (const kid of ["made-up-1", "made-up-2", "k2"]) await expect(keyFor(set, kid)).rejects.toBeInstanceOf(errors.JWKSNoMatchingKey);
    expect(provider.fetches).toHaveLength(1);

    provider.now += kidCooldownMs;
    await expect(keyFor(set, "made-up-3")).rejects.toBeInstanceOf(errors.JWKSNoMatchingKey);
    expect(provider.fetches).toHaveLength(2);
    // That fetch brought k2, which a cooldown no longer hides.
    await expect(keyFor(set, "k2")).resolves.toMatchObject({ type: "public" });
    for (const kid of ["made-up-4", "made-up-5"]) await expect(keyFor(set, kid)).rejects.toBeInstanceOf(errors.JWKSNoMatchingKey);
    expect(provider.fetches).toHaveLength(2);
  });

  it("cannot tell a key id it lacks from a new one while the provider is down: KeysUnavailable, and known ids still work", async () => {
    const provider = new Provider();
    const set = provider.keySet();
    await keyFor(set, "k1");
    provider.now += kidCooldownMs;
    provider.status = 503;
    expect((await unavailable(keyFor(set, "k2"))).retryAfterMs).toBe(retryMs);
    await expect(keyFor(set, "k1")).resolves.toMatchObject({ type: "public" });
    expect(provider.fetches).toHaveLength(2);
  });
});
