import type { MessageFrame, ThreadFrame } from "../../protocol";
import type { ChatClient, ChatError } from "../chat-client";
import { $ } from "./dom";
import { markMentionsMe, messageItem } from "./message-item";
import { explain } from "./words";

const dialog = $<HTMLDialogElement>("thread");
const title = $<HTMLHeadingElement>("thread-title");
const list = $<HTMLOListElement>("thread-messages");
const moreButton = $<HTMLButtonElement>("thread-more");
const error = $<HTMLParagraphElement>("thread-error");
const form = $<HTMLFormElement>("thread-composer");
const input = $<HTMLInputElement>("thread-text");

/**
 * A message and its replies, in a modal dialog: fetched page by page from
 * the room, joined by new replies as they arrive, with a field to reply in
 * it. Escape or Close shuts it and gives focus back to what opened it.
 */
export class ThreadView {
  readonly #chat: ChatClient;
  /** Whether a message mentions the reader: thread pages are not marked by the client as live messages are. */
  readonly #mentionsMe: (frame: MessageFrame) => boolean;
  /** The message whose thread is open, or null. */
  #seq: number | null = null;
  #opener: HTMLElement | null = null;
  /** What the thread shows, by seq: a reply that comes live and in a page shows once. */
  readonly #shown = new Set<number>();
  /** The last reply shown, where the next page starts. */
  #after = 0;
  /** The room has more replies than the pages fetched: a live one would come before those, out of order, so it waits for its page. */
  #more = false;
  /** Live replies that came while a page was on its way, for after it. */
  #early: MessageFrame[] | null = null;

  constructor(chat: ChatClient, mentionsMe: (frame: MessageFrame) => boolean, reply: (text: string, replyTo: number) => void) {
    this.#chat = chat;
    this.#mentionsMe = mentionsMe;
    $("thread-close").addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => this.#closed());
    moreButton.addEventListener("click", () => this.#page());
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const text = input.value.trim();
      if (text === "" || this.#seq === null) return;
      reply(text, this.#seq);
      input.value = "";
    });
  }

  /** Opens the thread of message `seq`; `opener` gets focus back when it closes. */
  open(seq: number, opener: HTMLElement): void {
    this.#seq = seq;
    this.#opener = opener;
    this.#shown.clear();
    this.#after = 0;
    this.#more = false;
    list.replaceChildren();
    title.textContent = "Thread";
    showError(null);
    if (!dialog.open) dialog.showModal();
    input.focus();
    this.#page();
  }

  /** A message as it arrives: shown if it replies to the open thread. */
  message(frame: MessageFrame): void {
    if (this.#seq === null || frame.replyTo?.seq !== this.#seq) return;
    if (this.#early !== null) this.#early.push(frame);
    else if (!this.#more) this.#add(frame, false);
  }

  /** Shuts the view from outside, as when the history its numbers belong to is gone. */
  close(): void {
    if (dialog.open) dialog.close();
  }

  #page(): void {
    const seq = this.#seq!;
    this.#early = [];
    list.setAttribute("aria-busy", "true");
    this.#chat.thread(seq, this.#after === 0 ? undefined : this.#after).then(
      (frame) => {
        if (seq === this.#seq) this.#paged(frame);
      },
      (refused: ChatError) => {
        if (seq !== this.#seq) return;
        this.#early = null;
        list.removeAttribute("aria-busy");
        showError(explain(refused));
      },
    );
  }

  #paged(frame: ThreadFrame): void {
    if (this.#after === 0) {
      title.textContent = `Thread of ${frame.root.deletedAt === undefined ? `${frame.root.user.name}'s message` : "a deleted message"}`;
      this.#add(frame.root, true);
    }
    for (const reply of frame.messages) this.#add(reply, false);
    this.#more = frame.more;
    const early = this.#early ?? [];
    this.#early = null;
    if (!this.#more) for (const reply of early) this.#add(reply, false);
    list.removeAttribute("aria-busy");
    if (moreButton.contains(document.activeElement) && !this.#more) input.focus();
    moreButton.hidden = !this.#more;
  }

  #add(frame: MessageFrame, root: boolean): void {
    if (this.#shown.has(frame.seq)) return;
    this.#shown.add(frame.seq);
    if (!root) this.#after = Math.max(this.#after, frame.seq);
    const deleted = frame.deletedAt !== undefined;
    const item = messageItem(deleted ? "" : frame.user.name, deleted ? "(a message was deleted)" : frame.text, frame.at, frame.mentions);
    item.dataset.seq = String(frame.seq);
    if (root) item.classList.add("root");
    if (deleted) item.classList.add("deleted");
    else if (this.#mentionsMe(frame)) markMentionsMe(item);
    list.append(item);
  }

  #closed(): void {
    this.#seq = null;
    this.#early = null;
    const opener = this.#opener;
    this.#opener = null;
    if (opener?.isConnected) opener.focus();
    else $("text").focus();
  }
}

function showError(text: string | null): void {
  error.hidden = text === null;
  error.textContent = text ?? "";
}
