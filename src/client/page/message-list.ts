import type { ChangeFrame, MessageFrame, User } from "../../protocol";
import { randomHex } from "../../protocol/names";
import type { ChatClient, ChatError } from "../chat-client";
import { showError } from "./composer";
import { $, element } from "./dom";
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

function timeOf(at: number): HTMLTimeElement {
  const time = element("time", "", new Date(at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }));
  time.dateTime = new Date(at).toISOString();
  return time;
}

function messageItem(from: string, text: string, at: number | null): HTMLLIElement {
  const item = element("li", "message");
  item.append(element("span", "who", from), element("span", "text", text));
  if (at !== null) item.append(timeOf(at));
  return item;
}

function markEdited(item: HTMLLIElement): void {
  if (item.querySelector(".edited") === null) item.querySelector(".text")!.after(element("span", "edited", " (edited)"));
}

/** A deleted message keeps its place, so that nothing looks lost, but neither its author nor its text. */
function markDeleted(item: HTMLLIElement): void {
  stopEditing(item);
  item.classList.add("deleted");
  item.querySelector(".text")!.textContent = "(a message was deleted)";
  for (const gone of item.querySelectorAll(".who, .edited, .actions")) gone.remove();
}

function stopEditing(item: HTMLLIElement): void {
  item.querySelector("form.edit")?.remove();
  item.querySelector<HTMLElement>(".text")!.hidden = false;
}

/**
 * The log: the room's messages as they are now, with edit and delete on
 * the reader's own, and the reader's own as they are sent, pending until
 * the room has them or refused with a retry.
 */
export class MessageList {
  readonly #chat: ChatClient;
  /** Who the room says the reader is, once welcomed. */
  readonly #you: () => User | null;
  readonly #pending = new Map<string, HTMLLIElement>();
  readonly #ownSeqs = new Set<number>();
  readonly #bySeq = new Map<number, HTMLLIElement>();

  constructor(chat: ChatClient, you: () => User | null) {
    this.#chat = chat;
    this.#you = you;
  }

  /** Sends a message, or again one that was refused, and shows it as pending until the room has it. */
  send(text: string, id: string = randomHex(16)): void {
    this.#sending(id, text);
    this.#chat.send(text, { id }).then(
      (seq) => this.#acked(id, seq),
      (error: ChatError) => this.#failed(id, text, error),
    );
  }

  reset(): void {
    messages.replaceChildren();
    this.#bySeq.clear();
    // Seqs count again from the new history: the old ones would mark others' messages as yours.
    this.#ownSeqs.clear();
    notice("The room's history was reset; these are its latest messages.", "warning");
    // What is still being sent, or was refused, is not in any history: it stays on the page, last.
    for (const item of this.#pending.values()) append(item);
  }

  message(frame: MessageFrame): void {
    const item = messageItem(frame.user.name, frame.text, frame.at);
    item.dataset.seq = String(frame.seq);
    // One's own by this page's acks, or by the account a token vouches for, whichever device sent it.
    const account = this.#you()?.account;
    if (this.#ownSeqs.has(frame.seq) || (account !== undefined && frame.user.account === account)) item.classList.add("own");
    this.#bySeq.set(frame.seq, item);
    append(item);
    if (frame.deletedAt !== undefined) markDeleted(item);
    else if (frame.editedAt !== undefined) markEdited(item);
    this.#offerChanges(item);
  }

  changed(frame: ChangeFrame): void {
    const item = this.#bySeq.get(frame.seq);
    if (item === undefined) return;
    if (frame.type === "delete") {
      markDeleted(item);
      return;
    }
    if (frame.type === "reactions") return;
    stopEditing(item);
    item.querySelector(".text")!.textContent = frame.text;
    markEdited(item);
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
    item.append(actions);
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

  #failed(id: string, text: string, error: ChatError): void {
    const item = this.#pending.get(id);
    const reason = explain(error);
    showError(reason);
    if (item === undefined) return;
    item.className = "message own failed";
    item.querySelector(".state")?.remove();
    const state = element("span", "state", ` Not sent: ${reason} `);
    const retry = element("button", "", "Retry");
    retry.type = "button";
    retry.addEventListener("click", () => this.send(text, id));
    state.append(retry);
    item.append(state);
  }
}
