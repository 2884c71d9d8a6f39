import type { Mention, ReplyTo } from "../../protocol";
import { element } from "./dom";
import { withMentions } from "./mentions";

function timeOf(at: number): HTMLTimeElement {
  const time = element("time", "", new Date(at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }));
  time.dateTime = new Date(at).toISOString();
  return time;
}

/** One message as the log and the thread view show it: who, what (its mentions marked) and when. */
export function messageItem(from: string, text: string, at: number | null, mentions: Mention[] = []): HTMLLIElement {
  const item = element("li", "message");
  const body = element("span", "text");
  withMentions(body, text, mentions);
  item.append(element("span", "who", from), body);
  if (at !== null) item.append(timeOf(at));
  return item;
}

/**
 * Marks a message that mentions the reader, for the eye with its class and
 * for a screen reader in words, since a colour is not announced.
 */
export function markMentionsMe(item: HTMLLIElement): void {
  item.classList.add("mentions-me");
  item.querySelector(".text")!.after(element("span", "mentions-you visually-hidden", " (mentions you)"));
}

/** What a reply shows of the message it answers, first in its item; a button that `go` takes to that message. */
export function quoteOf(replyTo: ReplyTo, go: () => void): HTMLButtonElement {
  const quote = element("button", "reply-to");
  quote.type = "button";
  quote.dataset.seq = String(replyTo.seq);
  if (replyTo.deleted) markQuoteDeleted(quote);
  else quote.append(element("span", "visually-hidden", "In reply to "), element("span", "quote-who", replyTo.user.name), `: ${replyTo.text}`);
  quote.addEventListener("click", go);
  return quote;
}

/** The quote of a message deleted since the reply was written, as a history would show it now. */
export function markQuoteDeleted(quote: HTMLElement): void {
  quote.classList.add("deleted");
  quote.replaceChildren(element("span", "visually-hidden", "In reply to "), "a deleted message");
}

/** What goes under a message's line, in this order, whenever each comes. */
const BELOW = ["picker", "reactions", "replies"];

/** Puts `block` (one of `BELOW`) under the message's line, in its place among the others. */
export function placeBelow(item: HTMLLIElement, block: HTMLElement): void {
  const rank = BELOW.findIndex((name) => block.classList.contains(name));
  const next = [...item.children].find((child) => BELOW.findIndex((name) => child.classList.contains(name)) > rank);
  item.insertBefore(block, next ?? null);
}

/** Adds `part` at the end of the message's line, above whatever is under it. */
export function placeInLine(item: HTMLLIElement, part: HTMLElement): void {
  const below = [...item.children].find((child) => BELOW.some((name) => child.classList.contains(name)));
  item.insertBefore(part, below ?? null);
}
