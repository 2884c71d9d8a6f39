import { REPLY_EXCERPT_CHARS } from "../../protocol";
import { $, element } from "./dom";

const draft = $<HTMLDivElement>("reply-draft");
const quote = $<HTMLParagraphElement>("reply-quote");
const textarea = $<HTMLTextAreaElement>("text");

/** The start of a message as a reply quotes it: its first `REPLY_EXCERPT_CHARS` characters (not UTF-16 units), marked when cut. */
export function excerpt(text: string): string {
  const chars = [...text];
  return chars.length <= REPLY_EXCERPT_CHARS ? text : `${chars.slice(0, REPLY_EXCERPT_CHARS).join("")}…`;
}

/**
 * The message the reader is answering, quoted above the composer until the
 * reply is sent or given up with its Cancel button or Escape. The composer
 * is described by the quote, so that a screen reader says what the next
 * message answers when it gets there.
 */
export class ReplyDraft {
  #seq: number | null = null;

  constructor() {
    $("reply-cancel").addEventListener("click", () => {
      this.clear();
      textarea.focus();
    });
    // On the form, so that a key the mention list took first (its own Escape) arrives already handled.
    $("composer").addEventListener("keydown", (event) => {
      if (event.key === "Escape" && this.#seq !== null && !event.defaultPrevented) {
        event.preventDefault();
        this.clear();
        textarea.focus();
      }
    });
  }

  /** The message being answered, if any. */
  get seq(): number | null {
    return this.#seq;
  }

  start(seq: number, author: string, text: string): void {
    this.#seq = seq;
    quote.replaceChildren("Replying to ", element("span", "quote-who", author), `: ${excerpt(text)}`);
    draft.hidden = false;
    textarea.setAttribute("aria-describedby", "reply-quote");
    textarea.focus();
  }

  clear(): void {
    this.#seq = null;
    draft.hidden = true;
    quote.replaceChildren();
    textarea.removeAttribute("aria-describedby");
  }
}
