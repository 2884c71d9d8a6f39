import { $ } from "./dom";

const composer = $<HTMLFormElement>("composer");
const textarea = $<HTMLTextAreaElement>("text");
const sendButton = composer.querySelector("button")!;
const composerError = $<HTMLParagraphElement>("composer-error");

/** Shows what went wrong with the last thing the reader did, or clears it (`null`). */
export function showError(text: string | null): void {
  composerError.hidden = text === null;
  composerError.textContent = text ?? "";
}

export function enableComposer(enabled: boolean): void {
  textarea.disabled = !enabled;
  sendButton.disabled = !enabled;
}

/**
 * Hands `send` each message the reader writes: sent with the button, or
 * with Enter (Shift+Enter starts a new line). Tells `typing` whether the
 * reader is writing one: on each keystroke while there is text, and
 * no longer once the text is sent, emptied or left.
 */
export function compose(send: (text: string) => void, typing: (active: boolean) => void): void {
  composer.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = textarea.value.trim();
    if (text === "") return;
    send(text);
    textarea.value = "";
    typing(false);
    textarea.focus();
  });
  // On the form, after the composer's own listeners: a key one of them took (a name picked with Enter) arrives handled.
  composer.addEventListener("keydown", (event) => {
    if (event.target === textarea && event.key === "Enter" && !event.shiftKey && !event.isComposing && !event.defaultPrevented) {
      event.preventDefault();
      composer.requestSubmit();
    }
  });
  textarea.addEventListener("input", () => typing(textarea.value.trim() !== ""));
  textarea.addEventListener("blur", () => typing(false));
  textarea.focus();
}
