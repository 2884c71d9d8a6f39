import { element } from "./dom";
import { placeBelow } from "./message-item";

/** The reactions the picker offers, with the names a screen reader says for them. */
export const COMMON_EMOJI: ReadonlyArray<readonly [emoji: string, name: string]> = [
  ["👍", "thumbs up"],
  ["❤️", "heart"],
  ["😂", "tears of joy"],
  ["🎉", "party popper"],
  ["😮", "surprised"],
  ["😢", "crying"],
  ["🙏", "folded hands"],
  ["👀", "eyes"],
];

/**
 * Opens, under the message `opener` is in, a row of the common emoji: each a button
 * (pressed when the reader has reacted with it), picked with a click or
 * Enter, moved through with Tab or the arrow keys. Picking one or Escape
 * closes it and puts focus back on `opener`; focus leaving it closes it.
 */
export function openPicker(opener: HTMLButtonElement, pressed: (emoji: string) => boolean, pick: (emoji: string) => void): void {
  const picker = element("div", "picker");
  picker.setAttribute("role", "toolbar");
  picker.setAttribute("aria-label", "Pick a reaction");
  // Focus goes into it, which a screen reader says; the log's live region would read it all out besides.
  picker.setAttribute("aria-live", "off");
  let open = true;
  // Focus moves before the picker goes: removing the focused button would close it again from its focusout.
  const close = (refocus: boolean) => {
    if (!open) return;
    open = false;
    opener.setAttribute("aria-expanded", "false");
    if (refocus) opener.focus();
    picker.remove();
  };
  const buttons = COMMON_EMOJI.map(([emoji, name]) => {
    const button = element("button", "", emoji);
    button.type = "button";
    button.setAttribute("aria-label", name);
    button.setAttribute("aria-pressed", String(pressed(emoji)));
    button.addEventListener("click", () => {
      close(true);
      pick(emoji);
    });
    return button;
  });
  picker.append(...buttons);
  picker.addEventListener("keydown", (event) => {
    const at = buttons.indexOf(event.target as HTMLButtonElement);
    const to = moveTo(event.key, at, buttons.length);
    if (event.key === "Escape") close(true);
    else if (to !== null) buttons[to]!.focus();
    else return;
    event.preventDefault();
    event.stopPropagation();
  });
  picker.addEventListener("focusout", (event) => {
    if (!picker.contains(event.relatedTarget as Node | null)) close(false);
  });
  opener.setAttribute("aria-expanded", "true");
  placeBelow(opener.closest("li")!, picker);
  buttons[0]!.focus();
}

/** Where an arrow, Home or End key moves focus in a row of `length`, wrapping at the ends; null for other keys. */
function moveTo(key: string, at: number, length: number): number | null {
  switch (key) {
    case "ArrowRight":
    case "ArrowDown":
      return (at + 1) % length;
    case "ArrowLeft":
    case "ArrowUp":
      return (at - 1 + length) % length;
    case "Home":
      return 0;
    case "End":
      return length - 1;
    default:
      return null;
  }
}
