import type { Reaction, ReactionsFrame, User } from "../../protocol";
import type { ChatClient, ChatError } from "../chat-client";
import { showError } from "./composer";
import { element } from "./dom";
import { openPicker } from "./emoji-picker";
import { placeBelow } from "./message-item";
import { explain } from "./words";

/**
 * The reactions under each message: a chip per emoji with its count,
 * pressed where the reader reacted, which takes the reader's reaction
 * back or adds it; and the picker that adds one.
 *
 * A summary names only the first few who reacted, so the reader's own
 * reactions are also remembered from what this page did and from the
 * room's news of them (from any of this session's connections, or any
 * device of the same account).
 */
export class Reactions {
  readonly #chat: ChatClient;
  readonly #you: () => User | null;
  /** Each shown message's summary, as the room last gave it. */
  readonly #summaries = new Map<number, { item: HTMLLIElement; reactions: Reaction[] }>();
  /** `seq emoji` of each reaction the reader is known to have made. */
  readonly #mine = new Set<string>();

  constructor(chat: ChatClient, you: () => User | null) {
    this.#chat = chat;
    this.#you = you;
  }

  /** Shows a message's reactions, from its history or its arrival. */
  shown(item: HTMLLIElement, seq: number, reactions: Reaction[]): void {
    this.#summaries.set(seq, { item, reactions });
    this.#render(seq);
  }

  changed(frame: ReactionsFrame): void {
    if (this.#isYou(frame.user)) this.#remember(frame.seq, frame.emoji, frame.removed !== true);
    const shown = this.#summaries.get(frame.seq);
    if (shown === undefined) return;
    shown.reactions = frame.reactions;
    this.#render(frame.seq);
  }

  /** A deleted message loses its reactions. */
  deleted(seq: number): void {
    this.#summaries.get(seq)?.item.querySelector(".reactions")?.remove();
    this.#summaries.delete(seq);
  }

  /** The room's history is gone, and the numbers with it. */
  reset(): void {
    this.#summaries.clear();
    this.#mine.clear();
  }

  /** The button that opens the picker for message `seq`, by `author`. */
  pickerButton(seq: number, author: string): HTMLButtonElement {
    const button = element("button", "", "react");
    button.type = "button";
    button.setAttribute("aria-label", `React to ${author}`);
    button.setAttribute("aria-expanded", "false");
    button.addEventListener("click", () => {
      if (button.getAttribute("aria-expanded") === "true") return;
      openPicker(
        button,
        (emoji) => this.#pressed(seq, emoji),
        (emoji) => this.#toggle(seq, emoji),
      );
    });
    return button;
  }

  #isYou(user: User): boolean {
    const account = this.#you()?.account;
    return this.#chat.isYou(user.id) || (account !== undefined && user.account === account);
  }

  #remember(seq: number, emoji: string, reacted: boolean): void {
    if (reacted) this.#mine.add(`${seq} ${emoji}`);
    else this.#mine.delete(`${seq} ${emoji}`);
  }

  #pressed(seq: number, emoji: string): boolean {
    const reaction = this.#summaries.get(seq)?.reactions.find((r) => r.emoji === emoji);
    return this.#mine.has(`${seq} ${emoji}`) || (reaction?.users.some((id) => this.#chat.isYou(id)) ?? false);
  }

  #toggle(seq: number, emoji: string): void {
    const adding = !this.#pressed(seq, emoji);
    (adding ? this.#chat.react(seq, emoji) : this.#chat.unreact(seq, emoji)).then(
      () => {
        this.#remember(seq, emoji, adding);
        if (this.#summaries.has(seq)) this.#render(seq);
        showError(null);
      },
      (error: ChatError) => showError(explain(error)),
    );
  }

  /**
   * Brings a message's chips up to date in place: a chip the reader just
   * pressed keeps its focus. One that goes hands focus to the picker's button.
   */
  #render(seq: number): void {
    const { item, reactions } = this.#summaries.get(seq)!;
    let row = item.querySelector<HTMLElement>(".reactions");
    if (reactions.length === 0) {
      if (row?.contains(document.activeElement)) item.querySelector<HTMLElement>(".respond button")?.focus();
      row?.remove();
      return;
    }
    if (row === null) {
      row = element("div", "reactions");
      row.setAttribute("role", "group");
      row.setAttribute("aria-label", "Reactions");
      // The chips are controls, not news: the log's live region would read out every count.
      row.setAttribute("aria-live", "off");
      placeBelow(item, row);
    }
    const chips = reactions.map((reaction) => this.#chip(row, seq, reaction));
    for (const [index, chip] of chips.entries()) if (row.children[index] !== chip) row.insertBefore(chip, row.children[index] ?? null);
    for (const gone of [...row.children].slice(chips.length)) {
      if (gone.contains(document.activeElement)) item.querySelector<HTMLElement>(".respond button")?.focus();
      gone.remove();
    }
  }

  #chip(row: HTMLElement, seq: number, { emoji, count }: Reaction): HTMLButtonElement {
    let chip = [...row.querySelectorAll<HTMLButtonElement>("button")].find((b) => b.dataset.emoji === emoji);
    if (chip === undefined) {
      chip = element("button", "chip");
      chip.type = "button";
      chip.dataset.emoji = emoji;
      chip.addEventListener("click", () => this.#toggle(seq, emoji));
    }
    chip.textContent = `${emoji} ${count}`;
    chip.setAttribute("aria-label", `${emoji} ${count} ${count === 1 ? "reaction" : "reactions"}`);
    chip.setAttribute("aria-pressed", String(this.#pressed(seq, emoji)));
    return chip;
  }
}
