import { mkdir, readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { moderate, peopleIn, say, until, useChromium, chromiumAvailable } from "../support/e2e/browser";
import { WsClient } from "../support/e2e/ws-client";

// The web client in Chromium: chatting and refusals. Coming back after a server restart, and pacing, are
// in browser-restart.test.ts, access and moderation in browser-access.test.ts.

// At the file level, so that without Chromium its stand-in test runs and says why.
const chrome = useChromium();

describe.skipIf(!chromiumAvailable)("the web client in Chromium", () => {
  const openRoom = (room: string, name: string) => chrome.open(room, name);

  it("carries a message typed in each of two pages and a ws client to the other two, once", async () => {
    const ann = await openRoom("browser-chat", "ann");
    const bob = await openRoom("browser-chat", "bob");
    const cat = await WsClient.open(`${chrome.server.url.replace("http", "ws")}/rooms/browser-chat?name=cat`);
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
    const wsUrl = `${chrome.server.url.replace("http", "ws")}/rooms/browser-crowd`;
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

  it("renders markup in names, texts, quotes and mentions as text", async () => {
    const markup = "<img src=x onerror=alert(1)>";
    const evil = await openRoom("browser-xss", markup);
    const ann = await openRoom("browser-xss", "ann");
    await say(evil, `<b>bold?</b> ${markup}`);
    await until(ann, (t) => t.length === 1, "the message");
    expect(await ann.locator("#messages li.message .who").first().textContent()).toBe(markup);
    expect(await ann.locator("#messages li.message .text").first().textContent()).toBe(`<b>bold?</b> ${markup}`);
    expect(await ann.locator("#messages img, #messages b, #users img").count()).toBe(0);
    expect(await ann.locator("#users li").first().textContent()).toBe(markup);

    // A reply quotes it, and a mention names it, as text too.
    await ann.getByRole("button", { name: `Reply to ${markup}` }).click();
    expect(await ann.locator("#reply-quote").textContent()).toBe(`Replying to ${markup}: <b>bold?</b> ${markup}`);
    await say(ann, `@${markup} hi`);
    await until(evil, (t) => t.length === 2, "ann's reply");
    expect(await evil.locator("#messages li.message .reply-to").textContent()).toBe(`In reply to ${markup}: <b>bold?</b> ${markup}`);
    expect(await evil.locator("#messages li.mentions-me .mention").textContent()).toBe(`@${markup}`);
    expect(await evil.locator("#messages img, #messages b, #composer img, #composer b").count()).toBe(0);
    expect(await ann.locator("#messages img, #messages b, #composer img, #composer b").count()).toBe(0);
    await evil.close();
    await ann.close();
  });

  it("shows a refusal in words and keeps the refused message to retry once the reason is gone", async () => {
    const ann = await openRoom("browser-retry", "ann");
    const { mod, id } = await chrome.moderatorOf("browser-retry", "ann");
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
