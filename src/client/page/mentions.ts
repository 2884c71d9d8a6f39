import type { Mention } from "../../protocol";
import { element } from "./dom";

/**
 * Fills `target` with `text`, each `@name` the room resolved as a mention
 * marked. Where names overlap (`@ann` and `@ann lee`) the longest wins, as
 * it did when the room resolved them; names are matched regardless of case.
 */
export function withMentions(target: HTMLElement, text: string, mentions: Mention[]): void {
  target.replaceChildren();
  const names = [...new Set(mentions.map((m) => m.name))].sort((a, b) => b.length - a.length);
  const named = (at: number) => names.find((n) => text.slice(at + 1, at + 1 + n.length).toLowerCase() === n.toLowerCase());
  let plainFrom = 0;
  let at = names.length === 0 ? -1 : text.indexOf("@");
  while (at !== -1) {
    const name = named(at);
    if (name === undefined) {
      at = text.indexOf("@", at + 1);
      continue;
    }
    const end = at + 1 + name.length;
    target.append(text.slice(plainFrom, at), element("span", "mention", text.slice(at, end)));
    plainFrom = end;
    at = text.indexOf("@", end);
  }
  target.append(text.slice(plainFrom));
}
