import { vi } from "vitest";

// The room runs in the tests' isolate, so mocking Date.now moves the clock it
// reads too. Each of these is undone before the next test (`restoreMocks` in
// vitest.config.ts).

const realNow = Date.now.bind(Date);

/** Stops the clock, so that a test decides when time passes. */
export function frozenClock(): { advance(ms: number): void } {
  let now = realNow();
  vi.spyOn(Date, "now").mockImplementation(() => now);
  return {
    advance: (ms) => {
      now += ms;
    },
  };
}

/** Makes the clock jump a second at every reading, so that rate limits stay out of tests about something else. */
export function fastClock(): void {
  let now = realNow();
  vi.spyOn(Date, "now").mockImplementation(() => (now += 1000));
}

/** A small seeded generator (mulberry32), so that a failing random run can be replayed exactly. */
export function seededRandom(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Holds every signature check until `release`, as a slow key set or a busy
 * machine would: answers that depend on one come late.
 */
export function slowSignatures(): { release(): void; waiting(): number } {
  const verify = crypto.subtle.verify.bind(crypto.subtle);
  let open: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  let waiting = 0;
  vi.spyOn(crypto.subtle, "verify").mockImplementation(async (...args: Parameters<SubtleCrypto["verify"]>) => {
    waiting++;
    await gate;
    return verify(...args);
  });
  return { release: () => open(), waiting: () => waiting };
}
