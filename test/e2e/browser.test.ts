import { existsSync } from "node:fs";
import { mkdir, readFile } from "node:fs/promises";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signToken } from "../../src/auth/grant";
import { ONE_ADDRESS_FOR_ALL, startDevServer, type DevServer } from "../support/e2e/wrangler";
import { WsClient } from "../support/e2e/ws-client";

// Debian's Chromium, driven by playwright-core: no browser is downloaded.
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const available = existsSync(CHROMIUM);
if (!available && process.env.CI === "true") throw new Error(`Chromium is missing at ${CHROMIUM}; .ci/run installs it with apt`);
// Without Chromium, this one stands for the tests skipped below and says why, in words that test/support/skip-reasons.ts prints at the end of the run.
if (!available) it("runs the web client in Chromium", ({ skip }) => skip(`no Chromium at ${CHROMIUM}; install it with: apt-get install chromium`));

const BROWSER_ROOM_SECRET = "browser-room-secret";
const INSECURE_HOST = "chat.lan.test";
/**
 * Each socket may send a burst of 3, refilled at 0.3 a second: small, so that
 * the pacing test types faster than that however slowly this machine types,
 * and enough for every other test here, none of which sends more than 3
 * frames on one socket.
 */
const BROWSER_RATE_LIMIT = "3";
/** History frames of two messages, so that every resume here is fetched page by page. */
const BROWSER_REPLAY_LIMIT = "2";
/** Users per page of the user list, so that a handful of people need pages. */
const BROWSER_LIST_LIMIT = "3";

const ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  // A name for 127.0.0.1 that, unlike it, is not a secure context: a page from it
  // is what a phone gets from http://<LAN address>:8787.
  `--host-resolver-rules=MAP ${INSECURE_HOST} 127.0.0.1`,
];

/** How many people a join notice names: `ann`, `ann and bob`, `ann, bob and cat`, `ann, bob and 3 others`. */
function peopleIn(notice: string): number {
  const names = notice.replace(/ entered the chat room\.$/, "");
  const others = / and (\d+) others$/.exec(names);
  if (others !== null) return 2 + Number(others[1]);
  return names.split(/, | and /).length;
}

describe.skipIf(!available)("the web client in Chromium", () => {
  let server: DevServer;
  let browser: Browser;
  const problems: string[] = [];

  beforeAll(async () => {
    // Its own wrangler dev, since one test restarts it.
    // Every page comes from 127.0.0.1, so the per-address limits are lifted.
    server = await startDevServer({
      vars: {
        ...ONE_ADDRESS_FOR_ALL,
        ROOM_SECRET: BROWSER_ROOM_SECRET,
        RATE_LIMIT_PER_10S: BROWSER_RATE_LIMIT,
        HISTORY_REPLAY_LIMIT: BROWSER_REPLAY_LIMIT,
        PRESENCE_LIST_LIMIT: BROWSER_LIST_LIMIT,
      },
    });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    // Nothing the pages did may have broken the Content-Security-Policy or thrown.
    expect(problems).toEqual([]);
  });

  async function openRoom(room: string, name: string): Promise<Page> {
    const page = await browser.newPage();
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
    await page.goto(`${server.url}/rooms/${room}?name=${encodeURIComponent(name)}`);
    await page.locator("#status[data-state=open]").waitFor();
    return page;
  }

  async function say(page: Page, text: string): Promise<void> {
    await page.locator("#text").fill(text);
    await page.locator("#text").press("Enter");
  }

  /** The texts of the messages a page shows, stored ones only, in order. */
  const shown = (page: Page) => page.locator("#messages li.message:not(.pending):not(.failed) .text").allTextContents();

  async function until(page: Page, ready: (texts: string[]) => boolean, what: string): Promise<string[]> {
    const deadline = performance.now() + 30_000;
    for (;;) {
      const texts = await shown(page);
      if (ready(texts)) return texts;
      if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}; page shows ${JSON.stringify(texts)}`);
      await page.waitForTimeout(50);
    }
  }

  /** A moderator's socket in `room`, and the id of the person named `name` there. */
  async function moderatorOf(room: string, name: string): Promise<{ mod: WsClient; id: string }> {
    const token = await signToken(BROWSER_ROOM_SECRET, { room, name: "mod", role: "moderator", exp: Math.floor(Date.now() / 1000) + 600 });
    const mod = await WsClient.open(`${server.url.replace("http", "ws")}/rooms/${room}?token=${token}`);
    const user = (await mod.next("welcome")).users.find((u) => u.name === name);
    if (user === undefined) throw new Error(`nobody named ${name} in ${room}`);
    return { mod, id: user.id };
  }

  /** Has a moderator mute or unmute someone, and waits until it is done. */
  async function moderate(mod: WsClient, type: "mute" | "unmute", user: string): Promise<void> {
    mod.send({ type, user, ...(type === "mute" && { seconds: 600 }) });
    await mod.skipTo("moderated");
  }

  it("carries a message typed in each of two pages and a ws client to the other two, once", async () => {
    const ann = await openRoom("browser-chat", "ann");
    const bob = await openRoom("browser-chat", "bob");
    const cat = await WsClient.open(`${server.url.replace("http", "ws")}/rooms/browser-chat?name=cat`);
    await say(ann, "hello from ann");
    await until(bob, (t) => t.includes("hello from ann"), "ann's message");
    await say(bob, "hello from bob");
    await until(ann, (t) => t.includes("hello from bob"), "bob's message");
    cat.send("hello from cat");
    const expected = ["hello from ann", "hello from bob", "hello from cat"];
    for (const page of [ann, bob]) expect(await until(page, (t) => t.length === 3, "three messages")).toEqual(expected);
    const catSaw: string[] = [];
    while (catSaw.length < 3) catSaw.push((await cat.skipTo("message")).text);
    expect(catSaw).toEqual(expected);
    await expect.poll(() => ann.locator("#users li").allTextContents()).toEqual(["ann (you)", "bob", "cat"]);
    cat.ws.close();
    await ann.close();
    await bob.close();
  });

  it("shows people who arrive together in one notice each, and pages a long user list with an 'and N more' entry", async () => {
    const ann = await openRoom("browser-crowd", "ann");
    const wsUrl = `${server.url.replace("http", "ws")}/rooms/browser-crowd`;
    // One after another, so that the list's order (join order) is known; they still come within a batch or two.
    const crowd: WsClient[] = [];
    for (const name of ["p1", "p2", "p3", "p4", "p5"]) crowd.push(await WsClient.open(`${wsUrl}?name=${name}`));
    // A message goes out after the news of every join before it.
    crowd[0]!.send("we are five");
    await until(ann, (t) => t.includes("we are five"), "the crowd's message");
    const notices = await ann.locator("#messages li.notice").allTextContents();
    // However the joins fell into batches, each person is in exactly one notice.
    expect(notices.filter((n) => n.endsWith("entered the chat room.")).reduce((sum, n) => sum + peopleIn(n), 0)).toBe(5);
    expect(await ann.locator("#users li").allTextContents()).toEqual(["ann (you)", "p1", "p2", "p3", "p4", "p5"]);

    const late = await openRoom("browser-crowd", "late");
    const users = late.locator("#users li");
    await expect.poll(() => users.allTextContents()).toEqual(["ann", "p1", "p2", "and 4 more"]);
    await late.locator("#users li.more button").click();
    await expect.poll(() => users.allTextContents()).toEqual(["ann", "p1", "p2", "p3", "p4", "p5", "and 1 more"]);
    await late.locator("#users li.more button").click();
    await expect.poll(() => users.allTextContents()).toEqual(["ann", "p1", "p2", "p3", "p4", "p5", "late (you)"]);
    expect(await late.locator("#online-count").textContent()).toBe("(7)");

    crowd[1]!.ws.close();
    await expect.poll(() => users.allTextContents()).toEqual(["ann", "p1", "p3", "p4", "p5", "late (you)"]);
    expect(await late.locator("#messages li.notice").filter({ hasText: "p2 left the chat room." }).count()).toBe(1);
    for (const client of crowd) client.ws.close();
    await ann.close();
    await late.close();
  });

  it("renders markup in names and texts as text", async () => {
    const markup = "<img src=x onerror=alert(1)>";
    const evil = await openRoom("browser-xss", markup);
    const ann = await openRoom("browser-xss", "ann");
    await say(evil, `<b>bold?</b> ${markup}`);
    await until(ann, (t) => t.length === 1, "the message");
    expect(await ann.locator("#messages li.message .who").first().textContent()).toBe(markup);
    expect(await ann.locator("#messages li.message .text").first().textContent()).toBe(`<b>bold?</b> ${markup}`);
    expect(await ann.locator("#messages img, #messages b, #users img").count()).toBe(0);
    expect(await ann.locator("#users li").first().textContent()).toBe(markup);
    await evil.close();
    await ann.close();
  });

  it("reconnects by itself after the room is reset, showing what was sent meanwhile (fetched in pages of two) and pending messages once", async () => {
    const ann = await openRoom("browser-reset", "ann");
    const bob = await openRoom("browser-reset", "bob");
    const annSockets: string[] = [];
    ann.on("websocket", (ws) => annSockets.push(ws.url()));
    await say(ann, "before the reset");
    await until(bob, (t) => t.includes("before the reset"), "the first message");

    const restarted = server.restart();
    await ann.locator("#status:not([data-state=open])").waitFor();
    await say(ann, "typed while offline");
    await restarted;

    const cat = await WsClient.open(`${server.url.replace("http", "ws")}/rooms/browser-reset?name=cat`);
    for (let i = 1; i <= 3; i++) cat.send(`sent meanwhile ${i}`);

    const expected = ["before the reset", "typed while offline", "sent meanwhile 1", "sent meanwhile 2", "sent meanwhile 3"];
    for (const page of [ann, bob]) {
      const texts = await until(page, (t) => expected.every((e) => t.includes(e)), "everything after the reset");
      expect([...texts].sort()).toEqual([...expected].sort());
      await page.locator("#status[data-state=open]").waitFor();
    }
    expect(await ann.locator("#messages li.pending, #messages li.failed").count()).toBe(0);
    // It resumed from where it was, in the history it saw.
    expect(annSockets.at(-1)).toMatch(/[?&]since=\d+&epoch=[0-9a-f]{16}(&|$)/);
    cat.ws.close();
    await ann.close();
    await bob.close();
  }, 90_000);

  it("fetches a long resume page by page even when the room makes it wait between pages", async () => {
    const ann = await openRoom("browser-pages", "ann");
    // Offline, so that it cannot come back before everything below was sent.
    await ann.context().setOffline(true);
    await server.restart();
    await ann.locator("#status:not([data-state=open])").waitFor();
    // Nine messages missed: five pages of two, more requests than the 3 frames
    // a socket may send at once, so the room refuses some and says when to ask again.
    const wsUrl = `${server.url.replace("http", "ws")}/rooms/browser-pages`;
    const expected: string[] = [];
    for (const name of ["cat", "dan", "eve"]) {
      const client = await WsClient.open(`${wsUrl}?name=${name}`);
      for (let i = 1; i <= 3; i++) {
        client.send(`${name} ${i}`);
        expected.push(`${name} ${i}`);
      }
      while ((await client.skipTo("message")).text !== `${name} 3`);
      client.ws.close();
    }
    await ann.context().setOffline(false);
    await ann.locator("#status[data-state=open]").waitFor();
    expect(await until(ann, (t) => t.length === expected.length, "all nine missed messages")).toEqual(expected);
    await ann.close();
  }, 90_000);

  it("keeps pending and refused messages on the page, and marks only its own, when the room's history is reset", async () => {
    const ann = await openRoom("browser-wipe", "ann");
    await say(ann, "old");
    await until(ann, (t) => t.includes("old"), "the first message, stored as seq 1");
    const { mod, id } = await moderatorOf("browser-wipe", "ann");
    await moderate(mod, "mute", id);
    await say(ann, "old and refused");
    const failed = ann.locator("#messages li.failed");
    await failed.waitFor();
    const refused = await failed.locator(".text").allTextContents();
    expect(refused).toEqual(["old and refused"]);
    mod.ws.close();

    // Every room loses its storage while the page is away; something is typed meanwhile.
    const restarted = server.restart({ wipe: true });
    await ann.locator("#status:not([data-state=open])").waitFor();
    await say(ann, "typed while offline");
    await restarted;

    await ann.locator("#messages li.warning", { hasText: "history was reset" }).waitFor();
    await until(ann, (t) => t.includes("typed while offline"), "the message typed while offline, stored in the new history");
    const cat = await WsClient.open(`${server.url.replace("http", "ws")}/rooms/browser-wipe?name=cat`);
    cat.send("from cat");
    expect(await until(ann, (t) => t.length === 2, "cat's message")).toEqual(["typed while offline", "from cat"]);

    expect(await failed.locator(".text").allTextContents()).toEqual(refused);
    expect(await failed.first().locator("button").textContent()).toBe("Retry");
    // seq 2 was ann's in the old history; in the new one it is cat's.
    expect(await ann.locator('#messages li[data-seq="1"]').getAttribute("class")).toContain("own");
    expect(await ann.locator('#messages li[data-seq="2"]').getAttribute("class")).not.toContain("own");
    cat.ws.close();
    await ann.close();
  }, 90_000);

  it("paces messages typed faster than the room takes them: every one stored, in order, none refused", async () => {
    const ann = await openRoom("browser-pace", "ann");
    const typed = ["one", "two", "three", "four"];
    // Four at once against a burst of 3: without pacing, the room refuses one.
    for (const text of typed) await say(ann, text);
    expect(await until(ann, (t) => t.length === typed.length, "all four stored")).toEqual(typed);
    expect(await ann.locator("#messages li.failed").count()).toBe(0);
    expect(await ann.locator("#composer-error").textContent()).toBe("");
    await ann.close();
  }, 60_000);

  it("shows a refusal in words and keeps the refused message to retry once the reason is gone", async () => {
    const ann = await openRoom("browser-retry", "ann");
    const { mod, id } = await moderatorOf("browser-retry", "ann");
    await moderate(mod, "mute", id);
    await say(ann, "said while muted");
    const refusal = ann.locator("#messages li.failed");
    await refusal.waitFor();
    expect(await ann.locator("#composer-error").textContent()).toMatch(/^A moderator muted you until .*; you can read but not write\.$/);
    expect(await refusal.locator("button").textContent()).toBe("Retry");

    await moderate(mod, "unmute", id);
    await refusal.locator("button").click();
    const texts = await until(ann, (t) => t.includes("said while muted"), "the retried message");
    expect(texts).toEqual(["said while muted"]);
    expect(await refusal.count()).toBe(0);
    expect((await mod.skipTo("message")).text).toBe("said while muted");
    mod.ws.close();
    await ann.close();
  });

  it("says in words why the room refuses it, and stops trying when trying again cannot help", async () => {
    const page = await browser.newPage();
    page.on("pageerror", (error) => problems.push(`refused page: ${error.message}`));
    // The page's timers run only when the test says, so "never tries again" can be shown without waiting.
    await page.clock.install();
    const sockets: string[] = [];
    page.on("websocket", (ws) => sockets.push(ws.url()));
    await page.goto(`${server.url}/rooms/private-browser-refused?name=ann`);
    await page.locator("#status[data-state=refused]").waitFor();
    expect(await page.locator("#messages li.warning").last().textContent()).toBe("This room is private: it needs an invitation link with a token.");
    expect(await page.locator("#text").isDisabled()).toBe(true);
    await page.clock.runFor(10 * 60_000);
    expect(await page.locator("#status").getAttribute("data-state")).toBe("refused");
    expect(sockets).toHaveLength(1);
    await page.close();
  });

  it("stops, and says so, when a moderator kicks it", async () => {
    const page = await browser.newPage();
    page.on("pageerror", (error) => problems.push(`kicked page: ${error.message}`));
    // The page's timers run only when the test says, so that a reconnect however late shows up below.
    await page.clock.install();
    const sockets: string[] = [];
    page.on("websocket", (ws) => sockets.push(ws.url()));
    await page.goto(`${server.url}/rooms/browser-kick?name=kim`);
    await page.locator("#status[data-state=open]").waitFor();
    const token = await signToken(BROWSER_ROOM_SECRET, { room: "browser-kick", name: "mod", role: "moderator", exp: Math.floor(Date.now() / 1000) + 600 });
    const mod = await WsClient.open(`${server.url.replace("http", "ws")}/rooms/browser-kick?token=${token}`);
    const kim = (await mod.next("welcome")).users.find((u) => u.name === "kim")!;
    mod.send({ type: "kick", user: kim.id });
    await mod.skipTo("moderated");
    await page.locator("#status[data-state=refused]").waitFor();
    expect(await page.locator("#messages li.warning").last().textContent()).toBe("A moderator removed you from the room.");
    await page.clock.runFor(10 * 60_000);
    expect(await page.locator("#status").getAttribute("data-state")).toBe("refused");
    expect(sockets).toHaveLength(1);
    // Nobody of that name came back to the room.
    mod.send({ type: "who" });
    expect((await mod.skipTo("users")).users.map((u) => u.name)).toEqual(["mod"]);
    mod.ws.close();
    await page.close();
  });

  it("gives a moderator kick, mute and ban buttons beside everyone else, and kicks with one", async () => {
    const token = await signToken(BROWSER_ROOM_SECRET, { room: "browser-moderate", name: "mia", role: "moderator", exp: Math.floor(Date.now() / 1000) + 600 });
    const bob = await WsClient.open(`${server.url.replace("http", "ws")}/rooms/browser-moderate?name=bob`);
    await bob.next("welcome");
    // A socket that has never spoken sees a close from wrangler dev only ten seconds late (abuse.test.ts).
    bob.send("hello");
    await bob.skipTo("message");
    const page = await browser.newPage();
    page.on("pageerror", (error) => problems.push(`moderator page: ${error.message}`));
    await page.goto(`${server.url}/rooms/browser-moderate?token=${token}`);
    await page.locator("#status[data-state=open]").waitFor();
    expect(await page.locator("#users li", { hasText: "mia" }).locator("button").count()).toBe(0);
    const entry = page.locator("#users li", { hasText: "bob" });
    expect(await entry.locator("button").allTextContents()).toEqual(["kick", "mute 10 min", "ban 1 h"]);
    await entry.locator("button", { hasText: "kick" }).click();
    expect((await bob.closed()).code).toBe(4001);
    await page.locator("#messages li", { hasText: "Done: bob was kicked." }).waitFor();
    await expect.poll(() => page.locator("#users li[data-id]").allTextContents()).toEqual(["mia (you)"]);
    await page.close();
  });

  it("edits and deletes its own messages only, and gives a moderator delete on everyone's", async () => {
    const room = "browser-changes";
    const bob = await WsClient.open(`${server.url.replace("http", "ws")}/rooms/${room}?name=bob`);
    await bob.next("welcome");
    bob.send("bob's words");
    await bob.skipTo("message");
    const page = await browser.newPage();
    page.on("pageerror", (error) => problems.push(`editing page: ${error.message}`));
    page.on("dialog", (dialog) => void dialog.accept());
    await page.goto(`${server.url}/rooms/${room}?name=ann`);
    await page.locator("#status[data-state=open]").waitFor();
    expect(await page.locator("#messages li.message", { hasText: "bob's words" }).locator("button").count()).toBe(0);

    await say(page, "helo wrold");
    const mine = page.locator("#messages li.own[data-seq]", { hasText: "helo wrold" });
    await mine.locator("button", { hasText: "edit" }).click();
    await mine.locator("form.edit input").fill("hello world");
    await mine.locator("form.edit input").press("Enter");
    expect(await bob.skipTo("edit")).toMatchObject({ text: "hello world" });
    await page.locator("#messages li.own", { hasText: "hello world (edited)" }).waitFor();

    await page.locator("#messages li.own", { hasText: "hello world" }).locator("button", { hasText: "delete" }).click();
    await bob.skipTo("delete");
    await page.locator("#messages li.deleted", { hasText: "(a message was deleted)" }).waitFor();
    expect(await page.locator("#messages li", { hasText: "hello world" }).count()).toBe(0);

    const token = await signToken(BROWSER_ROOM_SECRET, { room, name: "mia", role: "moderator", exp: Math.floor(Date.now() / 1000) + 600 });
    const moderator = await browser.newPage();
    moderator.on("pageerror", (error) => problems.push(`moderator's editing page: ${error.message}`));
    moderator.on("dialog", (dialog) => void dialog.accept());
    await moderator.goto(`${server.url}/rooms/${room}?token=${token}`);
    await moderator.locator("#status[data-state=open]").waitFor();
    const bobs = moderator.locator("#messages li.message", { hasText: "bob's words" });
    expect(await bobs.locator("button").allTextContents()).toEqual(["delete"]);
    await bobs.locator("button", { hasText: "delete" }).click();
    expect(await bob.skipTo("delete")).toMatchObject({ seq: 1 });
    await page.locator("#messages li.deleted").nth(1).waitFor();
    await moderator.close();
    await page.close();
    bob.ws.close();
  });

  it("works from an address that is not a secure context, where crypto.randomUUID is missing", async () => {
    const page = await browser.newPage();
    page.on("pageerror", (error) => problems.push(`insecure page: ${error.message}`));
    const url = new URL(`/rooms/browser-lan?name=ann`, server.url);
    url.hostname = INSECURE_HOST;
    await page.goto(url.href);
    expect(await page.evaluate("[window.isSecureContext, typeof crypto.randomUUID]")).toEqual([false, "undefined"]);
    await page.locator("#status[data-state=open]").waitFor();
    await say(page, "hello from the LAN");
    expect(await until(page, (t) => t.includes("hello from the LAN"), "the message, stored")).toEqual(["hello from the LAN"]);
    await page.close();
  });

  it("creates a private room from the lobby and goes there", async () => {
    const page = await browser.newPage();
    await page.goto(`${server.url}/`);
    await page.locator("#name").fill("ann");
    await page.locator("#create").click();
    await page.waitForURL(/\/rooms\/[0-9a-f]{32}\?name=ann$/);
    await page.locator("#status[data-state=open]").waitFor();
    expect(await page.locator("#room-name").textContent()).toMatch(/^[0-9a-f]{32}$/);
    await page.close();
  });

  it("enters a private- room from a link with a token, under the token's name, takes the token out of the address bar and keeps it out of the socket's URL", async () => {
    const token = await signToken(BROWSER_ROOM_SECRET, { room: "private-browser", name: "zoe", exp: Math.floor(Date.now() / 1000) + 600 });
    const page = await browser.newPage();
    const sockets: string[] = [];
    page.on("websocket", (ws) => sockets.push(ws.url()));
    await page.goto(`${server.url}/rooms/private-browser?token=${token}&name=zoe`);
    await page.locator("#status[data-state=open]").waitFor();
    await expect.poll(() => page.locator("#users li").allTextContents()).toEqual(["zoe (you)"]);
    await expect.poll(() => page.url()).toBe(`${server.url}/rooms/private-browser?name=zoe`);
    // The token went as a subprotocol, where no URL log records it.
    expect(sockets).toHaveLength(1);
    expect(sockets[0]).not.toContain(token);
    await page.close();
  });

  it("asks for a name inline when none is known, and refuses a bad one in words", async () => {
    const page = await browser.newPage();
    await page.goto(`${server.url}/rooms/browser-name`);
    await page.locator("#name-input").fill("bad\u202ename");
    await page.locator("#name-input").press("Enter");
    await page.locator("#name-error").filter({ hasText: "can't be used" }).waitFor();
    await page.locator("#name-input").fill("dora");
    await page.locator("#name-input").press("Enter");
    await page.locator("#status[data-state=open]").waitFor();
    await page.close();
  });

  it("fits a 360 px screen, and saves a screenshot of a chat page", async () => {
    const ann = await openRoom("browser-look", "ann");
    const bob = await openRoom("browser-look", "bob");
    await say(bob, "Hi Ann! This room hibernates between messages.");
    await say(ann, "And nothing is lost when we reconnect.");
    await until(ann, (t) => t.length === 2, "two messages");

    await mkdir("test/artifacts", { recursive: true });
    await ann.setViewportSize({ width: 900, height: 560 });
    await ann.screenshot({ path: "test/artifacts/chat-page.png" });
    const png = await readFile("test/artifacts/chat-page.png");
    expect(png.subarray(1, 4).toString()).toBe("PNG");
    expect(png.byteLength).toBeGreaterThan(10_000);
    expect(png.byteLength).toBeLessThan(2_000_000);

    await ann.setViewportSize({ width: 360, height: 740 });
    expect(await ann.evaluate<number>("document.documentElement.scrollWidth")).toBeLessThanOrEqual(360);
    expect(await ann.locator("#text").isVisible()).toBe(true);
    expect(await ann.locator("#name-form").isVisible()).toBe(false);
    expect(await ann.locator("#clock").textContent()).toMatch(/^Server time .+ · 2 online$/);
    await ann.screenshot({ path: "test/artifacts/chat-page-360.png" });
    await ann.close();
    await bob.close();
  });
});
