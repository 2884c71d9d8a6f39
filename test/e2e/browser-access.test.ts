import { describe, expect, it } from "vitest";
import { signToken } from "../../src/auth/grant";
import { BROWSER_ROOM_SECRET, chromiumAvailable, INSECURE_HOST, say, until, useChromium } from "../support/e2e/browser";
import { WsClient } from "../support/e2e/ws-client";

// The web client in Chromium: who may come in, and what moderators and authors may do.

// At the file level, so that without Chromium its stand-in test runs and says why.
const chrome = useChromium();

describe.skipIf(!chromiumAvailable)("the web client in Chromium, for access and moderation", () => {
  it("says in words why the room refuses it, and stops trying when trying again cannot help", async () => {
    const page = await chrome.browser.newPage();
    page.on("pageerror", (error) => chrome.problems.push(`refused page: ${error.message}`));
    // The page's timers run only when the test says, so "never tries again" can be shown without waiting.
    await page.clock.install();
    const sockets: string[] = [];
    page.on("websocket", (ws) => sockets.push(ws.url()));
    await page.goto(`${chrome.server.url}/rooms/private-browser-refused?name=ann`);
    await page.locator("#status[data-state=refused]").waitFor();
    expect(await page.locator("#messages li.warning").last().textContent()).toBe("This room is private: it needs an invitation link with a token.");
    expect(await page.locator("#text").isDisabled()).toBe(true);
    await page.clock.runFor(10 * 60_000);
    expect(await page.locator("#status").getAttribute("data-state")).toBe("refused");
    expect(sockets).toHaveLength(1);
    await page.close();
  });

  it("stops, and says so, when a moderator kicks it", async () => {
    const page = await chrome.browser.newPage();
    page.on("pageerror", (error) => chrome.problems.push(`kicked page: ${error.message}`));
    // The page's timers run only when the test says, so that a reconnect however late shows up below.
    await page.clock.install();
    const sockets: string[] = [];
    page.on("websocket", (ws) => sockets.push(ws.url()));
    await page.goto(`${chrome.server.url}/rooms/browser-kick?name=kim`);
    await page.locator("#status[data-state=open]").waitFor();
    const token = await signToken(BROWSER_ROOM_SECRET, { room: "browser-kick", name: "mod", role: "moderator", exp: Math.floor(Date.now() / 1000) + 600 });
    const mod = await WsClient.open(`${chrome.server.url.replace("http", "ws")}/rooms/browser-kick?token=${token}`);
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
    const bob = await WsClient.open(`${chrome.server.url.replace("http", "ws")}/rooms/browser-moderate?name=bob`);
    await bob.next("welcome");
    // A socket that has never spoken sees a close from wrangler dev only ten seconds late (abuse.test.ts).
    bob.send("hello");
    await bob.skipTo("message");
    const page = await chrome.browser.newPage();
    page.on("pageerror", (error) => chrome.problems.push(`moderator page: ${error.message}`));
    await page.goto(`${chrome.server.url}/rooms/browser-moderate?token=${token}`);
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
    const bob = await WsClient.open(`${chrome.server.url.replace("http", "ws")}/rooms/${room}?name=bob`);
    await bob.next("welcome");
    bob.send("bob's words");
    await bob.skipTo("message");
    const page = await chrome.browser.newPage();
    page.on("pageerror", (error) => chrome.problems.push(`editing page: ${error.message}`));
    page.on("dialog", (dialog) => void dialog.accept());
    await page.goto(`${chrome.server.url}/rooms/${room}?name=ann`);
    await page.locator("#status[data-state=open]").waitFor();
    expect(await page.locator("#messages li.message", { hasText: "bob's words" }).locator(".actions button").count()).toBe(0);

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
    const moderator = await chrome.browser.newPage();
    moderator.on("pageerror", (error) => chrome.problems.push(`moderator's editing page: ${error.message}`));
    moderator.on("dialog", (dialog) => void dialog.accept());
    await moderator.goto(`${chrome.server.url}/rooms/${room}?token=${token}`);
    await moderator.locator("#status[data-state=open]").waitFor();
    const bobs = moderator.locator("#messages li.message", { hasText: "bob's words" });
    expect(await bobs.locator(".actions button").allTextContents()).toEqual(["delete"]);
    await bobs.locator("button", { hasText: "delete" }).click();
    expect(await bob.skipTo("delete")).toMatchObject({ seq: 1 });
    await page.locator("#messages li.deleted").nth(1).waitFor();
    await moderator.close();
    await page.close();
    bob.ws.close();
  });

  it("works from an address that is not a secure context, where crypto.randomUUID is missing", async () => {
    const page = await chrome.browser.newPage();
    page.on("pageerror", (error) => chrome.problems.push(`insecure page: ${error.message}`));
    const url = new URL(`/rooms/browser-lan?name=ann`, chrome.server.url);
    url.hostname = INSECURE_HOST;
    await page.goto(url.href);
    expect(await page.evaluate("[window.isSecureContext, typeof crypto.randomUUID]")).toEqual([false, "undefined"]);
    await page.locator("#status[data-state=open]").waitFor();
    await say(page, "hello from the LAN");
    expect(await until(page, (t) => t.includes("hello from the LAN"), "the message, stored")).toEqual(["hello from the LAN"]);
    await page.close();
  });

  it("creates a private room from the lobby and goes there", async () => {
    const page = await chrome.browser.newPage();
    await page.goto(`${chrome.server.url}/`);
    await page.locator("#name").fill("ann");
    await page.locator("#create").click();
    await page.waitForURL(/\/rooms\/[0-9a-f]{32}\?name=ann$/);
    await page.locator("#status[data-state=open]").waitFor();
    expect(await page.locator("#room-name").textContent()).toMatch(/^[0-9a-f]{32}$/);
    await page.close();
  });

  it("enters a private- room from a link with a token, under the token's name, takes the token out of the address bar and keeps it out of the socket's URL", async () => {
    const token = await signToken(BROWSER_ROOM_SECRET, { room: "private-browser", name: "zoe", exp: Math.floor(Date.now() / 1000) + 600 });
    const page = await chrome.browser.newPage();
    const sockets: string[] = [];
    page.on("websocket", (ws) => sockets.push(ws.url()));
    await page.goto(`${chrome.server.url}/rooms/private-browser?token=${token}&name=zoe`);
    await page.locator("#status[data-state=open]").waitFor();
    await expect.poll(() => page.locator("#users li").allTextContents()).toEqual(["zoe (you)"]);
    await expect.poll(() => page.url()).toBe(`${chrome.server.url}/rooms/private-browser?name=zoe`);
    // The token went as a subprotocol, where no URL log records it.
    expect(sockets).toHaveLength(1);
    expect(sockets[0]).not.toContain(token);
    await page.close();
  });

  it("asks for a name inline when none is known, and refuses a bad one in words", async () => {
    const page = await chrome.browser.newPage();
    await page.goto(`${chrome.server.url}/rooms/browser-name`);
    await page.locator("#name-input").fill("bad\u202ename");
    await page.locator("#name-input").press("Enter");
    await page.locator("#name-error").filter({ hasText: "can't be used" }).waitFor();
    await page.locator("#name-input").fill("dora");
    await page.locator("#name-input").press("Enter");
    await page.locator("#status[data-state=open]").waitFor();
    await page.close();
  });
});
