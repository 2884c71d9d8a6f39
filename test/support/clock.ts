import { runInDurableObject } from "cloudflare:test";
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

/** The room's timers that `heldTimers` holds, and a way to let them go. */
export interface HeldTimers {
  /** How long each held timer was set for, in the order they were set. */
  delays(): number[];
  /**
   * Runs each timer held now, in the order they were set, inside the object
   * that set them (they may only send on its sockets there); one that
   * another clears first does not run.
   */
  run(object: DurableObjectStub): Promise<void>;
}

/**
 * Holds every timer of at least `minMs` (the room's batch windows, the end
 * of someone's typing) until the test runs it, so that a test decides
 * where a window ends and when time has run out, however slow the machine.
 * Shorter ones, like the tests' own polling, run as usual.
 */
export function heldTimers(minMs: number): HeldTimers {
  const setReal = globalThis.setTimeout;
  const clearReal = globalThis.clearTimeout;
  const held = new Map<number, { ms: number; callback: () => void }>();
  // Negative, so that no id of the runtime's is taken for one of these.
  let last = 0;
  vi.spyOn(globalThis, "setTimeout").mockImplementation(((callback: (...args: unknown[]) => void, ms = 0, ...args: unknown[]) => {
    if (ms < minMs) return setReal(callback, ms, ...args);
    last -= 1;
    held.set(last, { ms, callback: () => callback(...args) });
    return last;
  }) as typeof setTimeout);
  vi.spyOn(globalThis, "clearTimeout").mockImplementation((id) => {
    if (!held.delete(id as number)) clearReal(id);
  });
  return {
    delays: () => Array.from(held.values(), (timer) => timer.ms),
    run: (object) =>
      runInDurableObject(object, () => {
        for (const id of Array.from(held.keys())) {
          const timer = held.get(id);
          if (timer === undefined) continue;
          held.delete(id);
          timer.callback();
        }
      }),
  };
}
