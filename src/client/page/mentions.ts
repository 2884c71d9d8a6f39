import type { Mention, User } from "../../protocol";
import type { ChatClient } from "../chat-client";
import { element } from "./dom";

/** What may not touch a mention on either side: `mail@ann` and `@annabel` do not mention ann. */
const WORD = /[\p{L}\p{N}_]/u;

/**
 * Fills `target` with `text`, each `@name` the room resolved as a mention
 * marked. The room's rules decide what the page marks: case aside, the
 * longest name that no letter or digit continues, after an `@` that no
 * letter or digit precedes.
 */
export function withMentions(target: HTMLElement, text: string, mentions: Mention[]): void {
  target.replaceChildren();
  const names = [...new Set(mentions.map((m) => m.name))].sort((a, b) => b.length - a.length);
  const named = (at: number) =>
    names.find((n) => text.slice(at + 1, at + 1 + n.length).toLowerCase() === n.toLowerCase() && !WORD.test(text.charAt(at + 1 + n.length)));
  let plainFrom = 0;
  for (let at = names.length === 0 ? -1 : text.indexOf("@"); at !== -1; at = text.indexOf("@", at + 1)) {
    const name = at > 0 && WORD.test(text.charAt(at - 1)) ? undefined : named(at);
    if (name === undefined) continue;
    const end = at + 1 + name.length;
    target.append(text.slice(plainFrom, at), element("span", "mention", text.slice(at, end)));
    plainFrom = end;
    at = end - 1;
  }
  target.append(text.slice(plainFrom));
}

/** Whether `mentions` name the reader: one of this session's connections, or the reader's account on any device. */
export function mentionsReader(mentions: Mention[] | undefined, chat: ChatClient, you: User | null): boolean {
  return (mentions ?? []).some((m) => chat.isYou(m.id) || (you?.account !== undefined && m.account === you.account));
}
