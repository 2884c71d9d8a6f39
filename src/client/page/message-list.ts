import type { ChangeFrame, MessageFrame, User, WelcomeFrame } from "../../protocol";
import { randomHex } from "../../protocol/names";
import type { ChatClient, ChatError, ChatMessage } from "../chat-client";
import { showError } from "./composer";
import { $, element } from "./dom";
import { markMentionsMe, markQuoteDeleted, messageItem, placeBelow, placeInLine, quoteOf } from "./message-item";
import { mentionsReader, withMentions } from "./mentions";
import { Reactions } from "./reactions";
import { explain } from "./words";

const messages = $<HTMLOListElement>("messages");
const log = messages.parentElement!;

/** Appends to the log, keeping it scrolled to the bottom if the reader was there. */
function append(item: HTMLElement): void {
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  messages.append(item);
  if (atBottom) log.scrollTop = log.scrollHeight;
}

/** A line in the log from the page, not from anyone in the room. */
export function notice(text: string, kind: "notice" | "warning" = "notice"): void {
  append(element("li", kind, text));
}

function markEdited(item: HTMLLIElement): void {
  if (item.querySelector(".edited") === null) item.querySelector(".text")!.after(element("span", "edited", " (edited)"));
}

/**
 * A deleted message keeps its place, so that nothing looks lost, but
 * neither its author nor its text, nor anything to do with it; its
 * replies stay, and say so.
 */
function markDeleted(item: HTMLLIElement): void {
  stopEditing(item);
  item.classList.add("deleted");
  item.classList.remove("mentions-me");
  item.querySelector(".text")!.textContent = "(a message was deleted)";
  for (const gone of item.querySelectorAll(":scope > .reply-to, .who, .edited, .mentions-you, .respond, .actions, .picker, .reactions")) gone.remove();
  for (const quote of messages.querySelectorAll<HTMLElement>(`.reply-to[data-seq="${item.dataset.seq}"]`)) markQuoteDeleted(quote);
}

function stopEditing(item: HTMLLIElement): void {
  item.querySelector("form.edit")?.remove();
  item.querySelector<HTMLElement>(".text")!.hidden = false;
}

/** What the log asks of the rest of the page when the reader answers a message. */
export interface Answering {
  /** Puts a quote of the message above the composer, for the next message to answer. */
  reply(seq: number, author: string, text: string): void;
  /** Opens the thread of message `seq`; `opener` gets focus back when it closes. */
  thread(seq: number, opener: HTMLElement): void;
}

/**
 * The log: the room's messages as they are now, with reactions, replies,
 * quotes and mentions; edit and delete on the reader's own; and the
 * reader's own as they are sent, pending until the room has them or
 * refused with a retry.
 */
export class MessageList {
  readonly #chat: ChatClient;
  /** Who the room says the reader is, once welcomed. */
  readonly #you: () => User | null;
  readonly #answering: Answering;
  readonly #reactions: Reactions;
  readonly #pending = new Map<string, HTMLLIElement>();
  readonly #ownSeqs = new Set<number>();
  readonly #bySeq = new Map<number, HTMLLIElement>();
  /**
   * Each shown message's count of replies, and the last seq that count
   * took in: a message in a history counts the replies stored until then,
   * so only a reply after that adds one.
   */
  readonly #replies = new Map<number, { count: number; through: number }>();
  /** The room's last seq at the last welcome: a message arriving now is as it was then, or newer. */
  #welcomedAt = 0;

  constructor(chat: ChatClient, you: () => User | null, answering: Answering) {
    this.#chat = chat;
    this.#you = you;
    this.#answering = answering;
    this.#reactions = new Reactions(chat, you);
  }

  welcome(frame: WelcomeFrame): void {
    this.#welcomedAt = frame.lastSeq;
  }

  /** Sends a message (with `replyTo`, a reply), or again one that was refused, and shows it as pending until the room has it. */
  send(text: string, replyTo?: number, id: string = randomHex(16)): void {
    this.#sending(id, text);
    this.#chat.send(text, { id, ...(replyTo !== undefined && { replyTo }) }).then(
      (seq) => this.#acked(id, seq),
      (error: ChatError) => this.#failed(id, text, replyTo, error),
    );
  }

  reset(): void {
    messages.replaceChildren();
    this.#bySeq.clear();
    this.#replies.clear();
    this.#reactions.reset();
    // Seqs count again from the new history: the old ones would mark others' messages as yours.
    this.#ownSeqs.clear();
    notice("The room's history was reset; these are its latest messages.", "warning");
    // What is still being sent, or was refused, is not in any history: it stays on the page, last.
    for (const item of this.#pending.values()) append(item);
  }

  message(frame: ChatMessage): void {
    const item = messageItem(frame.user.name, frame.text, frame.at, frame.mentions);
    item.dataset.seq = String(frame.seq);
    // A quote can take focus, to the message it quotes.
    item.tabIndex = -1;
    // One's own by this page's acks, or by the account a token vouches for, whichever device sent it.
    const account = this.#you()?.account;
    if (this.#ownSeqs.has(frame.seq) || (account !== undefined && frame.user.account === account)) item.classList.add("own");
    if (frame.replyTo !== undefined) {
      const replyTo = frame.replyTo;
      item.prepend(quoteOf(replyTo, () => this.#goTo(replyTo.seq, item)));
    }
    if (frame.mentionsMe) markMentionsMe(item);
    this.#bySeq.set(frame.seq, item);
    this.#replies.set(frame.seq, { count: frame.replies ?? 0, through: Math.max(this.#welcomedAt, frame.seq) });
    append(item);
    if (frame.deletedAt !== undefined) markDeleted(item);
    else {
      if (frame.editedAt !== undefined) markEdited(item);
      this.#offerAnswers(item, frame);
      this.#reactions.shown(item, frame.seq, frame.reactions ?? []);
    }
    this.#offerChanges(item);
    this.#showReplies(frame.seq);
    if (frame.replyTo !== undefined) this.#replied(frame.replyTo.seq, frame.seq);
  }

  changed(frame: ChangeFrame): void {
    if (frame.type === "reactions") {
      this.#reactions.changed(frame);
      return;
    }
    const item = this.#bySeq.get(frame.seq);
    if (item === undefined) return;
    if (frame.type === "delete") {
      this.#reactions.deleted(frame.seq);
      markDeleted(item);
      return;
    }
    stopEditing(item);
    // The room resolves an edit's mentions again: the new text may mention others, or the reader no longer.
    withMentions(item.querySelector(".text")!, frame.text, frame.mentions ?? []);
    item.querySelector(".mentions-you")?.remove();
    item.classList.remove("mentions-me");
    if (mentionsReader(frame.mentions, this.#chat, this.#you())) markMentionsMe(item);
    markEdited(item);
  }

  /** React and reply, on every message the room has. */
  #offerAnswers(item: HTMLLIElement, frame: MessageFrame): void {
    const respond = element("span", "respond");
    const reply = element("button", "", "reply");
    reply.type = "button";
    reply.setAttribute("aria-label", `Reply to ${frame.user.name}`);
    reply.addEventListener("click", () => this.#answering.reply(frame.seq, frame.user.name, item.querySelector(".text")!.textContent ?? ""));
    respond.append(this.#reactions.pickerButton(frame.seq, frame.user.name), reply);
    placeInLine(item, respond);
  }

  /** A reply stored after its message's count: one more, for a message shown. */
  #replied(seq: number, reply: number): void {
    const replies = this.#replies.get(seq);
    if (replies === undefined || reply <= replies.through) return;
    replies.count += 1;
    replies.through = reply;
    this.#showReplies(seq);
  }

  /** The button under a message that has replies, which opens its thread. */
  #showReplies(seq: number): void {
    const count = this.#replies.get(seq)?.count ?? 0;
    if (count === 0) return;
    const item = this.#bySeq.get(seq)!;
    let button = item.querySelector<HTMLButtonElement>(":scope > .replies");
    if (button === null) {
      button = element("button", "replies");
      button.type = "button";
      button.setAttribute("aria-haspopup", "dialog");
      const opener = button;
      button.addEventListener("click", () => this.#answering.thread(seq, opener));
      placeBelow(item, button);
    }
    button.textContent = count === 1 ? "1 reply" : `${count} replies`;
  }

  /** Scrolls to message `seq` and gives it focus; false if the log does not show it. */
  show(seq: number): boolean {
    const item = this.#bySeq.get(seq);
    if (item === undefined) return false;
    item.scrollIntoView({ block: "center" });
    item.focus();
    return true;
  }

  /** Takes the reader to message `seq`: to where the log shows it, or else into its thread. */
  #goTo(seq: number, from: HTMLLIElement): void {
    if (!this.show(seq)) this.#answering.thread(seq, from.querySelector<HTMLElement>(".reply-to")!);
  }

  /** Edit and delete on one's own messages, and for a moderator delete on everyone's. */
  #offerChanges(item: HTMLLIElement): void {
    const own = item.classList.contains("own");
    if (item.classList.contains("deleted") || item.querySelector(".actions") !== null || (!own && !this.#you()?.moderator)) return;
    const seq = Number(item.dataset.seq);
    const actions = element("span", "actions");
    const button = (label: string, act: () => void) => {
      const b = element("button", "", label);
      b.type = "button";
      b.addEventListener("click", act);
      actions.append(b);
    };
    if (own) button("edit", () => this.#startEditing(item, seq));
    button("delete", () => {
      if (confirm("Delete this message for everyone?")) this.#chat.delete(seq).catch((error: ChatError) => showError(explain(error)));
    });
    placeInLine(item, actions);
  }

  /** Swaps a message's text for a field holding it; Enter saves, Escape gives up. */
  #startEditing(item: HTMLLIElement, seq: number): void {
    if (item.querySelector("form.edit") !== null) return;
    const text = item.querySelector<HTMLElement>(".text")!;
    const form = element("form", "edit");
    const input = element("input", "");
    input.value = text.textContent ?? "";
    input.setAttribute("aria-label", "New text");
    const save = element("button", "", "Save");
    save.type = "submit";
    form.append(input, save);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const value = input.value.trim();
      if (value !== "" && value !== text.textContent) this.#chat.edit(seq, value).catch((error: ChatError) => showError(explain(error)));
      stopEditing(item);
    });
    input.addEventListener("keydown", (event) => {
      if (event.key === "Escape") stopEditing(item);
    });
    text.hidden = true;
    text.after(form);
    input.focus();
  }

  #sending(id: string, text: string): void {
    let item = this.#pending.get(id);
    if (item === undefined) {
      item = messageItem(this.#you()?.name ?? "you", text, null);
      this.#pending.set(id, item);
      append(item);
    }
    item.className = "message own pending";
    item.querySelector(".state")?.remove();
    item.append(element("span", "state visually-hidden", "(sending)"));
  }

  #acked(id: string, seq: number): void {
    this.#ownSeqs.add(seq);
    const item = this.#bySeq.get(seq);
    if (item !== undefined) {
      item.classList.add("own");
      item.querySelector(".actions")?.remove();
      this.#offerChanges(item);
    }
    this.#pending.get(id)?.remove();
    this.#pending.delete(id);
    showError(null);
  }

  #failed(id: string, text: string, replyTo: number | undefined, error: ChatError): void {
    const item = this.#pending.get(id);
    const reason = explain(error);
    showError(reason);
    if (item === undefined) return;
    item.className = "message own failed";
    item.querySelector(".state")?.remove();
    const state = element("span", "state", ` Not sent: ${reason} `);
    const retry = element("button", "", "Retry");
    retry.type = "button";
    retry.addEventListener("click", () => this.send(text, replyTo, id));
    state.append(retry);
    item.append(state);
  }
}
