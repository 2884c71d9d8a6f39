import type { Page } from "playwright-core";
import { describe, expect, it } from "vitest";
import { signToken } from "../../src/auth/grant";
import { BROWSER_ROOM_SECRET, chromiumAvailable, openPage, say, until, useChromium } from "../support/e2e/browser";
import { WsClient } from "../support/e2e/ws-client";

// The web client in Chromium: typing, reactions, replies and threads, mentions.
// Typing lasts until it is stopped (TYPING_SECONDS is long).

// At the file level, so that without Chromium its stand-in test runs and says why.
const chrome = useChromium();

/** What a test can tell of the element that has focus in a page, or null when none has. */
async function focused(page: Page) {
  const at = page.locator(":focus");
  if ((await at.count()) === 0) return null;
  return {
    label: await at.getAttribute("aria-label"),
    text: await at.textContent(),
    id: await at.getAttribute("id"),
    seq: await at.getAttribute("data-seq"),
    className: await at.getAttribute("class"),
  };
}

/** Reads a client's frames up to the message with this text, and returns it. */
async function messageSaying(client: WsClient, text: string) {
  for (;;) {
    const message = await client.skipTo("message");
    if (message.text === text) return message;
  }
}

/**
 * Makes a page start as a tab in the background: `showTab(page, true)` brings
 * it to the front, as far as the page can tell (Chromium has no other way to
 * say a tab is hidden).
 */
async function startHidden(page: Page): Promise<void> {
  // As text: these tests are compiled without the DOM's types.
  await page.addInitScript(`
    let state = "hidden";
    Object.defineProperty(Document.prototype, "visibilityState", { configurable: true, get: () => state });
    Object.defineProperty(Document.prototype, "hidden", { configurable: true, get: () => state === "hidden" });
    window.showTab = (visible) => {
      state = visible ? "visible" : "hidden";
      document.dispatchEvent(new Event("visibilitychange"));
    };
  `);
}

async function showTab(page: Page, visible: boolean): Promise<void> {
  await page.evaluate(`window.showTab(${visible})`);
}

/** A token for `room` (or every room, `*`) that names `name` and the account `sub`. */
const tokenFor = (room: string, name: string, sub: string) => signToken(BROWSER_ROOM_SECRET, { room, name, sub, exp: Math.floor(Date.now() / 1000) + 600 });

describe.skipIf(!chromiumAvailable)("the web client in Chromium, in conversation", () => {
  const ws = async (room: string, name: string) => {
    const client = await WsClient.open(`${chrome.server.url.replace("http", "ws")}/rooms/${room}?name=${encodeURIComponent(name)}`);
    await client.next("welcome");
    return client;
  };

  it("shows who else is typing under the messages, naming a few and counting the rest, until they empty the composer, leave it or stop", async () => {
    const ann = await chrome.open("browser-typing", "ann");
    const bob = await chrome.open("browser-typing", "bob");
    const line = bob.locator("#typing");
    expect(await line.getAttribute("role")).toBe("status");

    await ann.locator("#text").pressSequentially("hel");
    await expect.poll(() => line.textContent()).toBe("ann is typing…");
    const cat = await ws("browser-typing", "cat");
    cat.send({ type: "typing" });
    await expect.poll(() => line.textContent()).toBe("ann and cat are typing…");
    const more = [await ws("browser-typing", "dan")];
    more[0]!.send({ type: "typing" });
    await expect.poll(() => line.textContent()).toBe("ann, cat and dan are typing…");
    more.push(await ws("browser-typing", "eve"), await ws("browser-typing", "fay"));
    for (const client of more.slice(1)) client.send({ type: "typing" });
    await expect.poll(() => line.textContent()).toBe("ann, cat and 3 others are typing…");
    // Leaving stops typing too.
    for (const client of more) client.ws.close();
    await expect.poll(() => line.textContent()).toBe("ann and cat are typing…");
    // Nobody is shown typing to themselves.
    await expect.poll(() => ann.locator("#typing").textContent()).toBe("cat is typing…");

    await ann.locator("#text").fill("");
    await expect.poll(() => line.textContent()).toBe("cat is typing…");
    cat.send({ type: "typing", stop: true });
    await expect.poll(() => line.textContent()).toBe("");

    // Leaving the composer with text in it stops too.
    await ann.locator("#text").pressSequentially("again");
    await expect.poll(() => line.textContent()).toBe("ann is typing…");
    await ann.locator("#text").blur();
    await expect.poll(() => line.textContent()).toBe("");
    cat.ws.close();
    await ann.close();
    await bob.close();
  });

  it("reacts with the picker from the keyboard, and toggles a chip, with counts and pressed states on both pages", async () => {
    const ann = await chrome.open("browser-react", "ann");
    const bob = await chrome.open("browser-react", "bob");
    const cat = await ws("browser-react", "cat");
    cat.send("react to me");
    await until(ann, (t) => t.includes("react to me"), "cat's message on ann's page");
    await until(bob, (t) => t.includes("react to me"), "cat's message on bob's page");

    // Escape closes the picker and gives focus back to the button that opened it.
    const react = ann.getByRole("button", { name: "React to cat" });
    await react.focus();
    await ann.keyboard.press("Enter");
    const picker = ann.getByRole("toolbar", { name: "Pick a reaction" });
    await picker.waitFor();
    expect(await focused(ann)).toMatchObject({ label: "thumbs up" });
    await ann.keyboard.press("Escape");
    await picker.waitFor({ state: "detached" });
    expect(await focused(ann)).toMatchObject({ label: "React to cat" });
    expect(await react.getAttribute("aria-expanded")).toBe("false");

    // Again, and this time an arrow moves to the heart, which Enter picks.
    await ann.keyboard.press("Enter");
    await picker.waitFor();
    await ann.keyboard.press("ArrowRight");
    expect(await focused(ann)).toMatchObject({ label: "heart" });
    await ann.keyboard.press("Enter");
    await picker.waitFor({ state: "detached" });
    expect(await focused(ann)).toMatchObject({ label: "React to cat" });
    expect(await cat.skipTo("reactions")).toMatchObject({ seq: 1, reactions: [{ emoji: "❤️", count: 1 }] });

    const chip = (page: Page) => page.locator('#messages li[data-seq="1"] .reactions button');
    const chipState = async (page: Page) => ({ text: await chip(page).textContent(), pressed: await chip(page).getAttribute("aria-pressed") });
    await expect.poll(() => chipState(ann)).toEqual({ text: "❤️ 1", pressed: "true" });
    await expect.poll(() => chipState(bob)).toEqual({ text: "❤️ 1", pressed: "false" });

    await chip(bob).click();
    await expect.poll(() => chipState(bob)).toEqual({ text: "❤️ 2", pressed: "true" });
    await expect.poll(() => chipState(ann)).toEqual({ text: "❤️ 2", pressed: "true" });

    // Ann's chip takes hers back; bob's stays.
    await chip(ann).click();
    await expect.poll(() => chipState(ann)).toEqual({ text: "❤️ 1", pressed: "false" });
    await expect.poll(() => chipState(bob)).toEqual({ text: "❤️ 1", pressed: "true" });
    expect(await chip(ann).count()).toBe(1);
    cat.ws.close();
    await ann.close();
    await bob.close();
  });

  it("replies with a quoted excerpt, counts replies, and pages through a thread view that new replies join", async () => {
    const ann = await chrome.open("browser-reply", "ann");
    const bob = await chrome.open("browser-reply", "bob");
    const cat = await ws("browser-reply", "cat");
    const question = `Where shall we have lunch today? ${"Somewhere with a long menu, please. ".repeat(4)}`.trim();
    cat.send(question);
    await until(bob, (t) => t.includes(question), "cat's question on bob's page");

    // Escape gives up a reply; Reply again starts one, quoting the author and at most 100 characters.
    await bob.getByRole("button", { name: "Reply to cat" }).click();
    const draft = bob.locator("#reply-draft");
    await draft.waitFor();
    expect(await focused(bob)).toMatchObject({ id: "text" });
    await bob.keyboard.press("Escape");
    await draft.waitFor({ state: "hidden" });
    await bob.getByRole("button", { name: "Reply to cat" }).click();
    expect(await bob.locator("#reply-quote").textContent()).toBe(`Replying to cat: ${[...question].slice(0, 100).join("")}…`);
    await say(bob, "first reply");
    await draft.waitFor({ state: "hidden" });
    expect(await messageSaying(cat, "first reply")).toMatchObject({ replyTo: { seq: 1, user: { name: "cat" } } });
    cat.send({ type: "message", text: "second reply", replyTo: 1 });
    cat.send({ type: "message", text: "third reply", replyTo: 1 });

    const texts = await until(ann, (t) => t.length === 4, "the question and three replies");
    expect(texts).toEqual([question, "first reply", "second reply", "third reply"]);
    const replies = ann.locator('#messages li[data-seq="1"] button.replies');
    await expect.poll(() => replies.textContent()).toBe("3 replies");
    const quote = ann.locator('#messages li[data-seq="2"] .reply-to');
    expect(await quote.textContent()).toBe(`In reply to cat: ${[...question].slice(0, 100).join("")}`);

    // The quote takes the reader to the message it quotes.
    await quote.focus();
    await ann.keyboard.press("Enter");
    await expect.poll(() => focused(ann)).toMatchObject({ seq: "1", className: "message" });

    // The thread: the question and the replies two at a time (the server's page size here).
    await replies.click();
    const thread = ann.getByRole("dialog", { name: "Thread of cat's message" });
    await thread.waitFor();
    const inThread = () => thread.locator("#thread-messages li .text").allTextContents();
    await expect.poll(inThread).toEqual([question, "first reply", "second reply"]);
    await thread.getByRole("button", { name: "More replies" }).click();
    await expect.poll(inThread).toEqual([question, "first reply", "second reply", "third reply"]);
    await thread.getByRole("button", { name: "More replies" }).waitFor({ state: "hidden" });

    // A reply from the thread, and one from elsewhere, join it as they arrive.
    await thread.getByLabel("Reply in this thread").fill("fourth, from the thread");
    await thread.getByLabel("Reply in this thread").press("Enter");
    await expect.poll(inThread).toContain("fourth, from the thread");
    await say(bob, "not in the thread");
    await bob.getByRole("button", { name: "Reply to cat" }).first().click();
    await say(bob, "fifth, from bob");
    await expect.poll(inThread).toEqual([question, "first reply", "second reply", "third reply", "fourth, from the thread", "fifth, from bob"]);
    await expect.poll(() => replies.textContent()).toBe("5 replies");
    await expect.poll(() => bob.locator('#messages li[data-seq="1"] button.replies').textContent()).toBe("5 replies");

    // Escape closes it, and focus goes back to what opened it.
    await ann.keyboard.press("Escape");
    await thread.waitFor({ state: "hidden" });
    expect(await focused(ann)).toMatchObject({ text: "5 replies" });
    cat.ws.close();
    await ann.close();
    await bob.close();
  });

  it("counts the replies a message had in its history once, and each live one after", async () => {
    const cat = await ws("browser-reply-count", "cat");
    cat.send("the question");
    cat.send({ type: "message", text: "an answer", replyTo: 1 });
    await messageSaying(cat, "an answer");
    // The page's history holds the question, as it is now (one reply), and that reply.
    const ann = await chrome.open("browser-reply-count", "ann");
    expect(await until(ann, (t) => t.length === 2, "the question and its answer")).toEqual(["the question", "an answer"]);
    const replies = ann.locator('#messages li[data-seq="1"] button.replies');
    expect(await replies.textContent()).toBe("1 reply");
    cat.send({ type: "message", text: "another answer", replyTo: 1 });
    await until(ann, (t) => t.length === 3, "the second answer");
    await expect.poll(() => replies.textContent()).toBe("2 replies");
    cat.ws.close();
    await ann.close();
  });

  it("marks a message that mentions the reader, and completes an @name from the user list with the keyboard", async () => {
    const annLee = await chrome.open("browser-mention", "ann lee");
    const anna = await ws("browser-mention", "anna");
    const bob = await chrome.open("browser-mention", "bob");
    await expect.poll(() => bob.locator("#users li").allTextContents()).toEqual(["ann lee", "anna", "bob (you)"]);

    const text = bob.locator("#text");
    const list = bob.getByRole("listbox", { name: "People to mention" });
    const options = () => list.getByRole("option").allTextContents();
    const active = async () => {
      const id = await text.getAttribute("aria-activedescendant");
      return id === null ? null : bob.locator(`[id="${id}"]`).textContent();
    };
    await text.pressSequentially("lunch @an");
    await list.waitFor();
    expect(await options()).toEqual(["ann lee", "anna"]);
    expect(await active()).toBe("ann lee");
    await bob.keyboard.press("ArrowDown");
    expect(await active()).toBe("anna");
    expect(await list.getByRole("option", { name: "anna" }).getAttribute("aria-selected")).toBe("true");
    await bob.keyboard.press("ArrowDown");
    expect(await active()).toBe("ann lee");
    // Escape closes the list and leaves the text as it was.
    await bob.keyboard.press("Escape");
    await list.waitFor({ state: "hidden" });
    expect(await text.inputValue()).toBe("lunch @an");
    expect(await text.getAttribute("aria-activedescendant")).toBeNull();

    await text.pressSequentially("n l");
    await list.waitFor();
    expect(await options()).toEqual(["ann lee"]);
    await bob.keyboard.press("Tab");
    await list.waitFor({ state: "hidden" });
    expect(await text.inputValue()).toBe("lunch @ann lee ");
    expect(await focused(bob)).toMatchObject({ id: "text" });
    await text.pressSequentially("and @anna?");
    await list.waitFor({ state: "hidden" });
    await bob.keyboard.press("Enter");

    const sent = "lunch @ann lee and @anna?";
    expect(await messageSaying(anna, sent)).toMatchObject({ mentions: [{ name: "ann lee" }, { name: "anna" }] });
    await until(annLee, (t) => t.includes(sent), "bob's message on ann lee's page");
    const onAnnLee = annLee.locator("#messages li.message", { hasText: sent });
    expect(await onAnnLee.getAttribute("class")).toContain("mentions-me");
    expect(await onAnnLee.locator(".mention").allTextContents()).toEqual(["@ann lee", "@anna"]);
    expect(await onAnnLee.locator(".visually-hidden").allTextContents()).toContain(" (mentions you)");

    await until(bob, (t) => t.includes(sent), "bob's own message");
    const onBob = bob.locator("#messages li.message[data-seq]", { hasText: sent });
    expect(await onBob.getAttribute("class")).not.toContain("mentions-me");
    expect(await onBob.locator(".mention").allTextContents()).toEqual(["@ann lee", "@anna"]);
    expect(await onBob.locator(".mentions-you").count()).toBe(0);
    anna.ws.close();
    await annLee.close();
    await bob.close();
  });

  it("draws a new-messages line above what the account has not read, marks read what a visible tab shows, and clears the line on another device's read", async () => {
    const room = "browser-unread";
    const token = await tokenFor(room, "ann", "ann-account");
    const phone = await WsClient.open(`${chrome.server.url.replace("http", "ws")}/rooms/${room}?token=${token}`);
    await phone.next("welcome");
    const cat = await ws(room, "cat");
    cat.send("one");
    cat.send("two");
    await messageSaying(phone, "two");

    // Opened in a background tab: both are unread, and stay so.
    const page = await openPage(chrome.browser, `${chrome.server.url}/rooms/${room}?token=${token}`, "ann", chrome.problems, startHidden);
    await until(page, (t) => t.length === 2, "cat's two messages");
    const line = page.locator("#messages li.new-messages");
    const below = () => line.evaluate((li) => li.nextElementSibling?.getAttribute("data-seq") ?? null);
    await expect.poll(below).toBe("1");
    expect(await line.getAttribute("role")).toBe("separator");

    // Brought to the front, it marks both read, which the phone hears, and the line goes.
    await showTab(page, true);
    expect(await phone.skipTo("read")).toMatchObject({ seq: 2 });
    await line.waitFor({ state: "detached" });

    // Back in the background, a new message gets the line; the phone reading it takes it away.
    await showTab(page, false);
    cat.send("three");
    await until(page, (t) => t.includes("three"), "cat's third message");
    await expect.poll(below).toBe("3");
    phone.send({ type: "read", seq: 3 });
    await line.waitFor({ state: "detached" });
    cat.ws.close();
    phone.ws.close();
    await page.close();
  });

  it("searches the room from its box, marks the matched words, takes the reader to a result the log shows, and says what it cannot", async () => {
    const room = "browser-search";
    const cat = await ws(room, "cat");
    cat.send("lunch at noon?");
    cat.send("dinner later");
    cat.send("Lunch tomorrow then");
    await messageSaying(cat, "Lunch tomorrow then");
    // The server's history frames hold two messages: the page shows the last two.
    const page = await chrome.open(room, "ann");
    expect(await until(page, (t) => t.length === 2, "the last two messages")).toEqual(["dinner later", "Lunch tomorrow then"]);

    await page.getByLabel("Search this room's messages").fill("lunch");
    await page.getByLabel("Search this room's messages").press("Enter");
    const results = page.getByRole("list", { name: "Search results" }).getByRole("button");
    const status = page.locator("#search-status");
    await expect.poll(() => status.textContent()).toBe("2 messages match.");
    expect(await status.getAttribute("role")).toBe("status");
    // Newest first, the matched words highlighted.
    expect(await results.evaluateAll((buttons) => buttons.map((b) => b.getAttribute("data-seq")))).toEqual(["3", "1"]);
    expect(await results.locator("mark").allTextContents()).toEqual(["Lunch", "lunch"]);

    // From the keyboard, a result the log shows gets focus; one older than that is said to be.
    await results.first().focus();
    await page.keyboard.press("Enter");
    await expect.poll(() => focused(page)).toMatchObject({ seq: "3", className: "message" });
    await results.last().click();
    await expect.poll(() => status.textContent()).toBe("That message is older than what the log shows.");

    // A query the room cannot read is refused in words.
    await page.getByLabel("Search this room's messages").fill('"lunch');
    await page.getByLabel("Search this room's messages").press("Enter");
    await expect.poll(() => status.textContent()).toMatch(/^That search can't be read \(.+\)\. Put words in double quotes/);
    expect(await results.count()).toBe(0);
    cat.ws.close();
    await page.close();
  });

  it("pages search results with More results, 20 at a time, saying how many match", async () => {
    const room = "browser-search-more";
    // 21 matches, three from each socket.
    const writers = await Promise.all(Array.from({ length: 7 }, (_, i) => ws(room, `w${i}`)));
    for (const [i, writer] of writers.entries()) for (let j = 0; j < 3; j++) writer.send(`lunch ${i * 3 + j}`);
    await Promise.all(writers.map((writer, i) => messageSaying(writer, `lunch ${i * 3 + 2}`)));
    const page = await chrome.open(room, "ann");
    await page.getByLabel("Search this room's messages").fill("lunch");
    await page.getByLabel("Search this room's messages").press("Enter");
    const results = page.getByRole("list", { name: "Search results" }).getByRole("button");
    const status = page.locator("#search-status");
    await expect.poll(() => status.textContent()).toBe("20 or more messages match.");
    expect(await results.count()).toBe(20);
    await page.getByRole("button", { name: "More results" }).click();
    await expect.poll(() => status.textContent()).toBe("21 messages match.");
    expect(await results.count()).toBe(21);
    await page.getByRole("button", { name: "More results" }).waitFor({ state: "hidden" });
    for (const writer of writers) writer.ws.close();
    await page.close();
  });

  it("lists the rooms of a token for every room with their unread badges, and opens a direct conversation that the other person's list shows", async () => {
    const annToken = await tokenFor("*", "ann", "acct-ann");
    // Ann is in browser-inbox with her token on another device, which reads nothing, when cat writes twice, once to her.
    const annPhone = await WsClient.open(`${chrome.server.url.replace("http", "ws")}/rooms/browser-inbox?token=${annToken}`);
    await annPhone.next("welcome");
    const cat = await ws("browser-inbox", "cat");
    cat.send("are you there?");
    cat.send("@ann lunch?");
    await messageSaying(annPhone, "@ann lunch?");
    annPhone.ws.close();
    cat.ws.close();

    const ann = await openPage(chrome.browser, `${chrome.server.url}/rooms/browser-home?token=${annToken}`, "ann", chrome.problems);
    const rooms = ann.getByRole("navigation", { name: "Your rooms" });
    const inbox = rooms.getByRole("link", { name: "browser-inbox, 2 unread, 1 mention" });
    await inbox.waitFor();
    expect(await inbox.locator(".badge").textContent()).toBe("2 @1");
    expect(await inbox.getAttribute("href")).toBe("/rooms/browser-inbox");
    expect(await rooms.getByRole("link", { name: "browser-home" }).getAttribute("aria-current")).toBe("page");

    // A direct conversation: the page goes to its room, still under ann's token, which no address shows.
    await ann.getByLabel("Message someone").fill("acct-bob");
    await ann.getByLabel("Message someone").press("Enter");
    await ann.waitForURL(/\/rooms\/dm-/);
    await ann.locator("#status[data-state=open]").waitFor();
    expect(ann.url()).not.toContain("token");
    await rooms.getByRole("link", { name: "Direct conversation with acct-bob" }).waitFor();
    // Titled by whom it is with, not by the room's name.
    await expect.poll(() => ann.locator("#room-name").textContent()).toBe("Conversation with acct-bob");
    expect(await ann.title()).toBe("acct-bob · Edge chat");
    await say(ann, "hello bob");
    await until(ann, (t) => t.includes("hello bob"), "ann's message in the direct conversation");

    const bob = await openPage(
      chrome.browser,
      `${chrome.server.url}/rooms/browser-home?token=${await tokenFor("*", "bob", "acct-bob")}`,
      "bob",
      chrome.problems,
    );
    const direct = bob.getByRole("navigation", { name: "Your rooms" }).getByRole("link", { name: "Direct conversation with acct-ann, 1 unread" });
    await direct.waitFor();
    expect(await direct.getAttribute("href")).toBe(new URL(ann.url()).pathname);

    // A token for one room lists nothing.
    const zoe = await openPage(
      chrome.browser,
      `${chrome.server.url}/rooms/browser-home?token=${await tokenFor("browser-home", "zoe", "acct-zoe")}`,
      "zoe",
      chrome.problems,
    );
    expect(await zoe.locator("#rooms-nav").isHidden()).toBe(true);

    // A tab whose token for every room has expired drops it, says so, and asks for a name rather than being refused.
    const expired = await signToken(BROWSER_ROOM_SECRET, { room: "*", name: "ann", sub: "acct-ann", exp: Math.floor(Date.now() / 1000) - 60 });
    await ann.evaluate((token) => sessionStorage.setItem("edge-chat.account-token", token), expired);
    await ann.goto(`${chrome.server.url}/rooms/browser-home`);
    await ann.getByText("Your token for every room has expired").waitFor();
    await ann.getByLabel("Choose a name to join").waitFor();
    expect(await ann.locator("#rooms-nav").isHidden()).toBe(true);
    expect(await ann.evaluate(() => sessionStorage.getItem("edge-chat.account-token"))).toBeNull();
    await ann.close();
    await bob.close();
    await zoe.close();
  });
});
