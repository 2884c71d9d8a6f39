import { describe, expect, it } from "vitest";
import { chromiumAvailable, moderate, say, until, useChromiumWithOwnServer } from "../support/e2e/browser";
import { WsClient } from "../support/e2e/ws-client";

// The web client in Chromium, coming back after its server restarts: a file of
// its own, with a server of its own, since a restart drops every page's socket.
// That server allows a socket a burst of 3 frames (PACED_BROWSER_VARS), so the
// pacing test is here too.

// At the file level, so that without Chromium its stand-in test runs and says why.
const chrome = useChromiumWithOwnServer();

describe.skipIf(!chromiumAvailable)("the web client in Chromium, through server restarts", () => {
  const openRoom = (room: string, name: string) => chrome.open(room, name);

  it("reconnects by itself after the room is reset, showing what was sent meanwhile (fetched in pages of two) and pending messages once", async () => {
    const ann = await openRoom("browser-reset", "ann");
    const bob = await openRoom("browser-reset", "bob");
    const annSockets: string[] = [];
    ann.on("websocket", (ws) => annSockets.push(ws.url()));
    await say(ann, "before the reset");
    await until(bob, (t) => t.includes("before the reset"), "the first message");

    const restarted = chrome.server.restart();
    await ann.locator("#status:not([data-state=open])").waitFor();
    await say(ann, "typed while offline");
    await restarted;

    const cat = await WsClient.open(`${chrome.server.url.replace("http", "ws")}/rooms/browser-reset?name=cat`);
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
    await chrome.server.restart();
    await ann.locator("#status:not([data-state=open])").waitFor();
    // Nine messages missed: five pages of two, more requests than the 3 frames
    // a socket may send at once, so the room refuses some and says when to ask again.
    const wsUrl = `${chrome.server.url.replace("http", "ws")}/rooms/browser-pages`;
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
    const { mod, id } = await chrome.moderatorOf("browser-wipe", "ann");
    await moderate(mod, "mute", id);
    await say(ann, "old and refused");
    const failed = ann.locator("#messages li.failed");
    await failed.waitFor();
    const refused = await failed.locator(".text").allTextContents();
    expect(refused).toEqual(["old and refused"]);
    mod.ws.close();

    // Every room loses its storage while the page is away; something is typed meanwhile.
    const restarted = chrome.server.restart({ wipe: true });
    await ann.locator("#status:not([data-state=open])").waitFor();
    await say(ann, "typed while offline");
    await restarted;

    await ann.locator("#messages li.warning", { hasText: "history was reset" }).waitFor();
    await until(ann, (t) => t.includes("typed while offline"), "the message typed while offline, stored in the new history");
    const cat = await WsClient.open(`${chrome.server.url.replace("http", "ws")}/rooms/browser-wipe?name=cat`);
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
});
