import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, expect, inject, it } from "vitest";
import { signToken } from "../../../src/auth/grant";
import { BROWSER_ROOM_SECRET, CHROMIUM, chromiumAvailable, PACED_BROWSER_VARS } from "./chromium";
import { type DevServer, startDevServer } from "./wrangler";
import { WsClient } from "./ws-client";

// What the browser tests (test/e2e/browser*.test.ts) do with Chromium and its pages.

export { BROWSER_ROOM_SECRET, chromiumAvailable, INSECURE_HOST } from "./chromium";

/** A test file's server and browser, and how its pages open a room and its moderators join. */
export interface Chromium<Server extends { url: string } = { url: string }> {
  readonly server: Server;
  readonly browser: Browser;
  /** What pages did wrong: thrown errors, console errors, dialogs. The file fails if any. */
  readonly problems: string[];
  open(room: string, name: string): Promise<Page>;
  moderatorOf(room: string, name: string): Promise<{ mod: WsClient; id: string }>;
}

/**
 * Connects a file's tests to the Chromium and the server that the global
 * setup started for every browser test file (./chromium.ts), and lets go of
 * the browser after them. Without Chromium, one test stands for the file's
 * and says why, in words that test/support/skip-reasons.ts prints at the end
 * of the run.
 */
export function useChromium(): Chromium {
  const shared = inject("browsers");
  return connected(
    async () => ({ url: shared!.url }),
    async () => {},
  );
}

/** As `useChromium`, with a wrangler dev of the file's own (PACED_BROWSER_VARS), which its tests may restart, started before them and stopped after. */
export function useChromiumWithOwnServer(): Chromium<DevServer> {
  let server: DevServer | undefined;
  return connected(
    async () => (server = await startDevServer({ vars: PACED_BROWSER_VARS })),
    async () => server?.stop(),
  );
}

function connected<Server extends { url: string }>(start: () => Promise<Server>, stop: () => Promise<void>): Chromium<Server> {
  let server: Server;
  let browser: Browser;
  const problems: string[] = [];
  if (!chromiumAvailable) it("runs the web client in Chromium", ({ skip }) => skip(`no Chromium at ${CHROMIUM}; install it with: apt-get install chromium`));
  beforeAll(async () => {
    if (!chromiumAvailable) return;
    [server, browser] = await Promise.all([start(), chromium.connect(inject("browsers")!.endpoint)]);
  }, 120_000);
  afterAll(async () => {
    // Closes the contexts this file made, and leaves the browser to the others.
    await browser?.close();
    await stop();
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
export async function moderatorIn(server: { url: string }, secret: string, room: string, name: string): Promise<{ mod: WsClient; id: string }> {
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
