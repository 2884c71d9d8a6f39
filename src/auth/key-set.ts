/**
 * The identity provider's key set (JWKS), kept so that the provider's
 * outages and slowness cost as few logins as possible:
 *
 * - keys once fetched stay in use while a refresh fails;
 * - callers that need a fetch at the same time share one;
 * - a fetch that takes longer than `timeoutMs` has failed, and no caller
 *   waits longer than that for one;
 * - after a failure no fetch starts for `retryMs`, and callers hear when
 *   the next one may;
 * - a key id missing from the set refetches it at most once per
 *   `kidCooldownMs`, so a stream of made-up ids cannot hammer the provider.
 *
 * The fetch function and the clock are parameters, so tests drive both.
 */

import { createLocalJWKSet, errors, type FlattenedJWSInput, type JSONWebKeySet, type JWSHeaderParameters } from "jose";

export interface KeySetTiming {
  /** How long a fetch, its body included, may take before it counts as failed. */
  timeoutMs: number;
  /** How old the keys may get before the next use refreshes them. */
  maxAgeMs: number;
  /** How long after a failed fetch the next may start. */
  retryMs: number;
  /** How long after a successful fetch a key id missing from it may trigger another. */
  kidCooldownMs: number;
}

export const KEY_SET_TIMING: KeySetTiming = {
  // A healthy provider answers in well under a second; a login should not wait much longer for a sick one.
  timeoutMs: 3_000,
  // Providers publish a new key before they sign with it, and keep a retired one published for a while;
  // 10 minutes bounds how long a key the provider removed is still trusted here.
  maxAgeMs: 10 * 60_000,
  // Without keys every login fails, so the provider is asked again soon, but at most once per 5 s per isolate.
  retryMs: 5_000,
  // As jose's own remote key sets do: a rotation is seen within 30 s, a made-up kid costs at most one fetch per 30 s.
  kidCooldownMs: 30_000,
};

/** No keys could be had to check a token: the provider did not answer in time, or not with a key set. */
export class KeysUnavailable extends Error {
  constructor(
    message: string,
    /** When the next fetch may start. */
    readonly retryAfterMs: number,
  ) {
    super(message);
  }
}

export interface KeySetIo {
  fetch(url: string, init: { signal: AbortSignal; headers: Record<string, string> }): Promise<Response>;
  /** Milliseconds since the epoch. */
  now(): number;
}

interface Fetched {
  resolve: ReturnType<typeof createLocalJWKSet>;
  at: number;
}

interface Pending {
  promise: Promise<Fetched>;
}

export class KeySet {
  #keys: Fetched | null = null;
  #pending: Pending | null = null;
  #failedAt = -Infinity;

  constructor(
    readonly url: string,
    private readonly io: KeySetIo,
    private readonly timing: KeySetTiming = KEY_SET_TIMING,
  ) {}

  /**
   * The key that checks a token with this header, for `jwtVerify`. Throws
   * `KeysUnavailable` when the keys cannot be had, and jose's
   * `JWKSNoMatchingKey` when the provider's set has no such key.
   */
  readonly getKey = async (header: JWSHeaderParameters, token: FlattenedJWSInput): Promise<CryptoKey> => {
    const cached = this.#keys;
    let keys: Fetched;
    if (cached === null) keys = await this.#fetch();
    else if (this.io.now() - cached.at >= this.timing.maxAgeMs) keys = await this.#fetch().catch(() => cached);
    else keys = cached;
    try {
      return await keys.resolve(header, token);
    } catch (error) {
      const mayRefetch = this.#pending !== null || this.io.now() - keys.at >= this.timing.kidCooldownMs;
      if (!(error instanceof errors.JWKSNoMatchingKey) || !mayRefetch) throw error;
    }
    // Perhaps a key the provider added since: a failure here means the token cannot be checked, not that it is bad.
    return (await this.#fetch()).resolve(header, token);
  };

  #fetch(): Promise<Fetched> {
    if (this.#pending === null) {
      const wait = this.#failedAt + this.timing.retryMs - this.io.now();
      if (wait > 0) return Promise.reject(new KeysUnavailable("the identity provider's keys could not be fetched a moment ago", wait));
      this.#pending = this.#start();
    }
    return this.#within(this.#pending);
  }

  #start(): Pending {
    const pending: Pending = { promise: this.#download() };
    pending.promise.then(
      (keys) => {
        this.#keys = keys;
        if (this.#pending === pending) this.#pending = null;
      },
      () => {
        if (this.#pending !== pending) return;
        this.#pending = null;
        this.#failedAt = this.io.now();
      },
    );
    return pending;
  }

  async #download(): Promise<Fetched> {
    let cause: string;
    try {
      const response = await this.io.fetch(this.url, { signal: AbortSignal.timeout(this.timing.timeoutMs), headers: { Accept: "application/json" } });
      if (response.ok) return { resolve: createLocalJWKSet((await response.json()) as JSONWebKeySet), at: this.io.now() };
      await response.body?.cancel();
      cause = `it answered ${response.status}`;
    } catch {
      cause = `no key set came back within ${this.timing.timeoutMs} ms, or what came was not one`;
    }
    throw new KeysUnavailable(`the identity provider's keys could not be fetched: ${cause}`, this.timing.retryMs);
  }

  /**
   * Waits for a fetch for at most `timeoutMs`, by a timer of the caller's
   * own. Other requests may await a fetch that one request started (locally
   * they do, and get its keys), but in Workers a fetch belongs to the request
   * that started it and can be dropped without ever settling if that request
   * is cancelled (panva/jose#509). Callers sharing it then still give up in
   * time, and the first to do so forgets it, so that the next one starts
   * another.
   */
  async #within(pending: Pending): Promise<Fetched> {
    let giveUp!: (error: KeysUnavailable) => void;
    const late = new Promise<never>((_, reject) => (giveUp = reject));
    const timer = setTimeout(() => {
      if (this.#pending === pending) {
        this.#pending = null;
        this.#failedAt = this.io.now();
      }
      giveUp(new KeysUnavailable(`the identity provider's keys took over ${this.timing.timeoutMs} ms to come`, this.timing.retryMs));
    }, this.timing.timeoutMs);
    try {
      return await Promise.race([pending.promise, late]);
    } finally {
      clearTimeout(timer);
    }
  }
}
