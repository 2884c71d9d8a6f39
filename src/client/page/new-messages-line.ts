import type { ChatClient } from "../chat-client";
import { $, element } from "./dom";

const messages = $<HTMLOListElement>("messages");
const log = messages.parentElement!;

/** The newest messages are in view: the log is scrolled to (near) its bottom. */
function atBottom(): boolean {
  return log.scrollHeight - log.scrollTop - log.clientHeight < 40;
}

/**
 * The line in the log above the first message the reader's account has not
 * read, wherever it read last (this page, or another of its devices); and
 * the reading itself: while the tab is visible and the newest messages are
 * in view, the room hears they were seen, so the line goes once read.
 */
export class NewMessagesLine {
  readonly #chat: ChatClient;
  readonly #line = element("li", "new-messages", "New messages");

  constructor(chat: ChatClient) {
    this.#chat = chat;
    // A separator, not a message: the live region announces it only as where the new ones start.
    this.#line.setAttribute("role", "separator");
    this.#line.setAttribute("aria-label", "New messages below");
    chat.on("message", () => {
      this.#seen();
      this.#place();
    });
    // Marking read moves the position at once, and says so with this event.
    chat.on("read", () => this.#place());
    chat.on("reset", () => this.#place());
    log.addEventListener("scroll", () => this.#seen(), { passive: true });
    document.addEventListener("visibilitychange", () => this.#seen());
  }

  /** Marks read what the reader can see now. */
  #seen(): void {
    if (document.visibilityState === "visible" && atBottom() && this.#chat.lastSeq > this.#chat.readSeq) this.#chat.markRead();
  }

  /** Above the first message after the read position that someone else wrote; nowhere if there is none. */
  #place(): void {
    const read = this.#chat.readSeq;
    const first = [...messages.querySelectorAll<HTMLLIElement>("li.message[data-seq]:not(.own)")].find((item) => Number(item.dataset.seq) > read);
    if (first === undefined) this.#line.remove();
    else if (first.previousElementSibling !== this.#line) first.before(this.#line);
  }
}
