import { existsSync } from "node:fs";
import { chromium } from "playwright-core";
import { ONE_ADDRESS_FOR_ALL, startDevServer } from "./wrangler";

// Chromium and the browser tests' server, as the end-to-end project's global
// setup starts them once for every browser test file (test/support/e2e/browser.ts).

declare module "vitest" {
  interface ProvidedContext {
    /** The shared Chromium's endpoint and the browser tests' shared server; null without Chromium. */
    browsers: { endpoint: string; url: string } | null;
  }
}

// Debian's Chromium, driven by playwright-core: no browser is downloaded.
export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
export const chromiumAvailable = existsSync(CHROMIUM);
if (!chromiumAvailable && process.env.CI === "true") throw new Error(`Chromium is missing at ${CHROMIUM}; .ci/run installs it with apt`);

/** The secret the browser tests' servers sign tokens with. */
export const BROWSER_ROOM_SECRET = "browser-room-secret";
/** A name for 127.0.0.1 that, unlike it, is not a secure context: a page from it is what a phone gets from http://<LAN address>:8787. */
export const INSECURE_HOST = "chat.lan.test";

/**
 * The browser tests' shared server. History frames of two messages, so that
 * every resume and thread is fetched page by page, and users in pages of
 * three, so that a handful of people need pages. Typing lasts ten minutes
 * unless stopped, so that no test sees it expire on a slow machine. Every page
 * comes from 127.0.0.1, so the per-address limits are lifted. Each socket
 * keeps the default rate limit, a burst of 20: the pages send more frames than
 * their messages (thread pages, read positions), and with a smaller burst the
 * tests would wait out the room's pace at every step.
 */
export const BROWSER_VARS = {
  ...ONE_ADDRESS_FOR_ALL,
  ROOM_SECRET: BROWSER_ROOM_SECRET,
  HISTORY_REPLAY_LIMIT: "2",
  PRESENCE_LIST_LIMIT: "3",
  TYPING_SECONDS: "600",
  // The pages take batches however quiet the room, so that every browser test goes through them.
  BATCH_ABOVE: "0",
};

/**
 * The server of the browser test file that restarts its own: each socket may
 * send a burst of 3, refilled at 0.3 a second, small, so that the pacing test
 * types faster than that however slowly this machine types, and a resume of
 * a few pages asks for more than that at once.
 */
export const PACED_BROWSER_VARS = { ...BROWSER_VARS, RATE_LIMIT_PER_10S: "3" };

/** How Chromium runs here; `insecureHost` names 127.0.0.1 as a host that is not a secure context. */
export function chromiumArgs(insecureHost: string): string[] {
  return [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    // The tests' pages share two renderer processes instead of starting one
    // each: about a tenth less renderer CPU for the browser tests, which
    // open dozens.
    "--renderer-process-limit=2",
    // A name for 127.0.0.1 that, unlike it, is not a secure context: a page from it
    // is what a phone gets from http://<LAN address>:8787.
    `--host-resolver-rules=MAP ${insecureHost} 127.0.0.1`,
  ];
}

/**
 * One Chromium, which every browser test file connects to, and one server
 * for the files that do not restart theirs: a launch and a `wrangler dev`
 * start cost seconds of CPU each, which a file of its own would spend again.
 * Each test uses rooms and accounts of its own, and each page a browser
 * context of its own. Returns what stops both, or null without Chromium.
 */
export async function startBrowsers(): Promise<{ browsers: { endpoint: string; url: string }; stop: () => Promise<void> } | null> {
  if (!chromiumAvailable) return null;
  const [browser, server] = await Promise.allSettled([
    chromium.launchServer({ executablePath: CHROMIUM, args: chromiumArgs(INSECURE_HOST) }),
    startDevServer({ vars: BROWSER_VARS }),
  ]);
  const stop = async (): Promise<void> => {
    await Promise.all([browser.status === "fulfilled" && browser.value.close(), server.status === "fulfilled" && server.value.stop()]);
  };
  if (browser.status === "rejected" || server.status === "rejected") {
    await stop();
    throw browser.status === "rejected" ? browser.reason : (server as PromiseRejectedResult).reason;
  }
  return { browsers: { endpoint: browser.value.wsEndpoint(), url: server.value.url }, stop };
}
