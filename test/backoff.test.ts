import { describe, expect, it } from "vitest";
import { BACKOFF_MAX_MS, backoffMs } from "../src/client/backoff";

describe("the web client's reconnect backoff", () => {
  it("doubles from half a second, with jitter in the upper half of each step", () => {
    expect([0, 1, 2, 3].map((attempt) => backoffMs(attempt, () => 0))).toEqual([250, 500, 1000, 2000]);
    expect([0, 1, 2, 3].map((attempt) => backoffMs(attempt, () => 1))).toEqual([500, 1000, 2000, 4000]);
  });

  it("never waits more than 30 s, however many attempts failed", () => {
    expect(backoffMs(50, () => 1)).toBe(BACKOFF_MAX_MS);
    expect(backoffMs(1000, () => 0)).toBe(BACKOFF_MAX_MS / 2);
  });
});
