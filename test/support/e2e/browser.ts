import { existsSync } from "node:fs";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { signToken } from "../../../src/auth/grant";
import { type DevServer, ONE_ADDRESS_FOR_ALL, startDevServer } from "./wrangler";
import { WsClient } from "./ws-client";

// What the browser tests (test/e2e/browser*.test.ts) do with Chromium and its pages.

// Debian's Chromium, driven by playwright-core: no browser is downloaded.
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
export const chromiumAvailable = existsSync(CHROMIUM);
if (!chromiumAvailable && process.env.CI === "true") throw new Error(`Chromium is missing at ${CHROMIUM}; .ci/run installs it with apt`);

/** The secret the browser tests' server signs tokens with. */
export const BROWSER_ROOM_SECRET = "browser-room-secret";
/** A name for 127.0.0.1 that, unlike it, is not a secure context: a page from it is what a phone gets from http://<LAN address>:8787. */
export const INSECURE_HOST = "chat.lan.test";

/**
 * The browser tests' server. Each socket may send a burst of 3, refilled at
 * 0.3 a second: small, so that the pacing test types faster than that
 * however slowly this machine types, and enough for every other test, none
 * of which sends more than 3 frames on one socket. History frames of two
 * messages, so that every resume and thread is fetched page by page, and
 * users in pages of three, so that a handful of people need pages. Typing
 * lasts ten minutes unless stopped, so that no test sees it expire on a slow
 * machine. Every page comes from 127.0.0.1, so the per-address limits are
 * lifted.
 */
const BROWSER_VARS = {
  ...ONE_ADDRESS_FOR_ALL,
  ROOM_SECRET: BROWSER_ROOM_SECRET,
  RATE_LIMIT_PER_10S: "3",
  HISTORY_REPLAY_LIMIT: "2",
  PRESENCE_LIST_LIMIT: "3",
  TYPING_SECONDS: "600",
};

/** A test file's server and browser, and how its pages open a room and its moderators join. */
export interface Chromium {
  readonly server: DevServer;
  readonly browser: Browser;
  /** What pages did wrong: thrown errors, console errors, dialogs. The file fails if any. */
  readonly problems: string[];
  open(room: string, name: string): Promise<Page>;
  moderatorOf(room: string, name: string): Promise<{ mod: WsClient; id: string }>;
}

/**
 * Starts a wrangler dev of its own (a test may restart it) and Chromium
 * before a file's tests, and stops both after them. Without Chromium, one
 * test stands for the file's and says why, in words that
 * test/support/skip-reasons.ts prints at the end of the run.
 */
export function useChromium(): Chromium {
  let server: DevServer;
  let browser: Browser;
  const problems: string[] = [];
  if (!chromiumAvailable) it("runs the web client in Chromium", ({ skip }) => skip(`no Chromium at ${CHROMIUM}; install it with: apt-get install chromium`));
  beforeAll(async () => {
    if (!chromiumAvailable) return;
    server = await startDevServer({ vars: BROWSER_VARS });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: chromiumArgs(INSECURE_HOST) });
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    // Nothing the pages did may have broken the Content-Security-Policy or thrown.
    expect(problems).toEqual([]);
  });
  return {
    get server() {
      return server;
    },
    get browser() {
      return browser;
    },
    problems,
    open: (room, name) => openPage(browser, `${server.url}/rooms/${room}?name=${encodeURIComponent(name)}`, name, problems),
    moderatorOf: (room, name) => moderatorIn(server, BROWSER_ROOM_SECRET, room, name),
  };
}

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
    // A name for 127.0.0.1 that, unlike it, is not a secure context: a page from it
    // is what a phone gets from http://<LAN address>:8787.
    `--host-resolver-rules=MAP ${insecureHost} 127.0.0.1`,
  ];
}

/** How many people a join notice names: `ann`, `ann and bob`, `ann, bob and cat`, `ann, bob and 3 others`. */
export function peopleIn(notice: string): number {
  const names = notice.replace(/ entered the chat room\.$/, "");
  const others = / and (\d+) others$/.exec(names);
  if (others !== null) return 2 + Number(others[1]);
  return names.split(/, | and /).length;
}

/**
 * A page at `url`, once its socket is open. Whatever it throws, logs as an
 * error or asks in a dialog goes into `problems`, under `name`. `prepare`
 * runs before the page loads: to add scripts that run before its own.
 */
export async function openPage(browser: Browser, url: string, name: string, problems: string[], prepare?: (page: Page) => Promise<void>): Promise<Page> {
  const page = await browser.newPage();
  await prepare?.(page);
  page.on("pageerror", (error) => problems.push(`${name}: ${error.message}`));
  page.on("console", (message) => {
    // While the server restarts or the page is offline, the browser reports the dropped
    // sockets and the page's requests asking why, failed or answered 426 (nothing stops
    // a connection now: the server came back meanwhile); those are expected.
    const text = message.text();
    const expected = text.includes("WebSocket") || /net::ERR_(CONNECTION_REFUSED|INTERNET_DISCONNECTED)|status of 426 \(Upgrade Required\)/.test(text);
    if (message.type() === "error" && !expected) problems.push(`${name}: ${message.text()}`);
  });
  page.on("dialog", (dialog) => {
    problems.push(`${name}: a dialog opened: ${dialog.message()}`);
    void dialog.dismiss();
  });
  await page.goto(url);
  await page.locator("#status[data-state=open]").waitFor();
  return page;
}

export async function say(page: Page, text: string): Promise<void> {
  await page.locator("#text").fill(text);
  await page.locator("#text").press("Enter");
}

/** The texts of the messages a page shows, stored ones only, in order. */
export const shown = (page: Page) => page.locator("#messages li.message:not(.pending):not(.failed) .text").allTextContents();

export async function until(page: Page, ready: (texts: string[]) => boolean, what: string): Promise<string[]> {
  const deadline = performance.now() + 30_000;
  for (;;) {
    const texts = await shown(page);
    if (ready(texts)) return texts;
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}; page shows ${JSON.stringify(texts)}`);
    await page.waitForTimeout(50);
  }
}

/** A moderator's socket in `room`, and the id of the person named `name` there. */
export async function moderatorIn(server: DevServer, secret: string, room: string, name: string): Promise<{ mod: WsClient; id: string }> {
  const token = await signToken(secret, { room, name: "mod", role: "moderator", exp: Math.floor(Date.now() / 1000) + 600 });
  const mod = await WsClient.open(`${server.url.replace("http", "ws")}/rooms/${room}?token=${token}`);
  const user = (await mod.next("welcome")).users.find((u) => u.name === name);
  if (user === undefined) throw new Error(`nobody named ${name} in ${room}`);
  return { mod, id: user.id };
}

/** Has a moderator mute or unmute someone, and waits until it is done. */
export async function moderate(mod: WsClient, type: "mute" | "unmute", user: string): Promise<void> {
  mod.send({ type, user, ...(type === "mute" && { seconds: 600 }) });
  await mod.skipTo("moderated");
}
