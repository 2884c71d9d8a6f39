import { env } from "cloudflare:workers";
import { expect, it } from "vitest";
import type { Logger } from "./logger";

// This Worker's binding; test/env.d.ts types the chat's, which are not here.
const { LOGGER } = env as unknown as { LOGGER: DurableObjectNamespace<Logger> };

it("asks an object that goes on logging after its answer", async () => {
  const logger = LOGGER.get(LOGGER.idFromName("late"));
  expect(await (await logger.fetch("http://logger/")).text()).toBe("answered");
});
