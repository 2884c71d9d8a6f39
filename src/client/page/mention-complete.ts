import { MAX_NAME_CHARS } from "../../protocol";
import { $, element } from "./dom";

const list = $<HTMLDivElement>("mention-list");
const hint = $<HTMLParagraphElement>("mention-hint");

/** How many names the list offers at once: enough to pick from, few enough to read. */
const SHOWN = 8;

/**
 * The names offered after an `@` in the composer: a listbox of the people
 * online whose names start with what follows the `@`. The composer keeps
 * focus; its `aria-activedescendant` names the option a screen reader
 * should read. Up and Down move, Enter or Tab inserts `@Full Name `,
 * Escape closes the list (the keys go no further while it is open).
 */
export class MentionComplete {
  readonly #input: HTMLTextAreaElement;
  readonly #names: () => string[];
  #matches: string[] = [];
  #active = 0;
  /** Where the `@` being completed is in the composer's text. */
  #at = -1;

  constructor(input: HTMLTextAreaElement, names: () => string[]) {
    this.#input = input;
    this.#names = names;
    input.setAttribute("aria-autocomplete", "list");
    input.setAttribute("aria-controls", list.id);
    input.addEventListener("input", () => this.#update());
    input.addEventListener("click", () => this.#update());
    input.addEventListener("blur", () => this.close());
    input.addEventListener("keydown", (event) => this.#key(event));
    // A click on a name must not take focus from the composer first: that would close the list.
    list.addEventListener("mousedown", (event) => event.preventDefault());
    list.addEventListener("click", (event) => {
      const option = (event.target as HTMLElement).closest<HTMLElement>("[role=option]");
      if (option !== null) this.#pick(Number(option.dataset.index));
    });
  }

  close(): void {
    if (list.hidden) return;
    list.hidden = true;
    list.replaceChildren();
    hint.textContent = "";
    this.#input.removeAttribute("aria-activedescendant");
    this.#matches = [];
  }

  /** Opens, filters or closes the list for the word before the caret. */
  #update(): void {
    const query = this.#query();
    if (query === null) {
      this.close();
      return;
    }
    const lower = query.toLowerCase();
    const matches = this.#names()
      .filter((name) => name.toLowerCase().startsWith(lower))
      .slice(0, SHOWN);
    if (matches.length === 0) {
      this.close();
      return;
    }
    const same = matches.length === this.#matches.length && matches.every((name, i) => name === this.#matches[i]);
    if (same && !list.hidden) return;
    this.#matches = matches;
    this.#active = 0;
    list.replaceChildren(
      ...matches.map((name, index) => {
        const option = element("div", "", name);
        option.id = `mention-option-${index}`;
        option.dataset.index = String(index);
        option.setAttribute("role", "option");
        return option;
      }),
    );
    list.hidden = false;
    hint.textContent = `${matches.length} ${matches.length === 1 ? "name" : "names"} to mention: up and down to choose, Enter to insert.`;
    this.#show();
  }

  /**
   * What follows an `@` before the caret, if that `@` starts a word and
   * what follows it could still grow into a name; null otherwise.
   */
  #query(): string | null {
    const { value, selectionStart, selectionEnd } = this.#input;
    if (selectionStart !== selectionEnd) return null;
    const before = value.slice(0, selectionStart);
    const at = before.lastIndexOf("@");
    if (at === -1 || (at > 0 && !/\s/.test(before[at - 1]!))) return null;
    const query = before.slice(at + 1);
    if (query.includes("\n") || [...query].length > MAX_NAME_CHARS) return null;
    this.#at = at;
    return query;
  }

  #key(event: KeyboardEvent): void {
    if (list.hidden || event.isComposing) return;
    const last = this.#matches.length - 1;
    switch (event.key) {
      case "ArrowDown":
        this.#active = this.#active === last ? 0 : this.#active + 1;
        this.#show();
        break;
      case "ArrowUp":
        this.#active = this.#active === 0 ? last : this.#active - 1;
        this.#show();
        break;
      case "Enter":
      case "Tab":
        this.#pick(this.#active);
        break;
      case "Escape":
        this.close();
        break;
      default:
        return;
    }
    event.preventDefault();
  }

  #show(): void {
    for (const [index, option] of [...list.children].entries()) option.setAttribute("aria-selected", String(index === this.#active));
    this.#input.setAttribute("aria-activedescendant", `mention-option-${this.#active}`);
    list.children[this.#active]?.scrollIntoView({ block: "nearest" });
  }

  /** Replaces the `@` and what follows it up to the caret with the whole name and a space. */
  #pick(index: number): void {
    const name = this.#matches[index];
    if (name === undefined) return;
    const { value, selectionStart } = this.#input;
    const inserted = `@${name} `;
    this.#input.value = value.slice(0, this.#at) + inserted + value.slice(selectionStart);
    const caret = this.#at + inserted.length;
    this.#input.setSelectionRange(caret, caret);
    this.close();
  }
}
