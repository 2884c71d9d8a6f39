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

/** Hands `send` each message the reader writes: sent with the button, or with Enter (Shift+Enter starts a new line). */
export function compose(send: (text: string) => void): void {
  composer.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = textarea.value.trim();
    if (text === "") return;
    send(text);
    textarea.value = "";
    textarea.focus();
  });
  textarea.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      composer.requestSubmit();
    }
  });
  textarea.focus();
}
