import { MAX_MENTIONS, MAX_NAME_CHARS, type Mention } from "../protocol";
import type { Accounts } from "./accounts";
import { toUser, type Roster } from "./roster";

/** A letter, digit or underscore: what may not follow a name for it to be mentioned, nor precede the `@` (as in an address). */
const WORD = /[\p{L}\p{N}_]/u;
/** What may end a name's first word without being part of how it is looked up: `@ann,` finds ann. */
const TRAILING = /[\p{P}\p{S}]+$/u;

/**
 * What a name is looked up by after an `@`: its first word, lowercased,
 * without trailing punctuation. Names may contain spaces, so the whole
 * name is compared only with the few that share this key.
 */
export function nameKey(name: string): string {
  const first = name.trimStart().split(/\s/, 1)[0] ?? "";
  return first.toLowerCase().replace(TRAILING, "");
}

/**
 * Who `text` mentions: after each `@` that does not follow a letter or
 * digit, the longest name among `find(key)` that the text goes on with
 * (case aside) and that no letter or digit continues; everyone of that
 * name, if several have it. Each person once, at most `MAX_MENTIONS`.
 */
export function mentionsIn(text: string, find: (key: string) => Mention[]): Mention[] {
  const found = new Map<string, Mention>();
  for (let at = text.indexOf("@"); at !== -1 && found.size < MAX_MENTIONS; at = text.indexOf("@", at + 1)) {
    if (at > 0 && WORD.test(text[at - 1]!)) continue;
    // A name is at most MAX_NAME_CHARS code points, which may be two units each.
    const rest = text.slice(at + 1, at + 1 + 2 * MAX_NAME_CHARS + 2).toLowerCase();
    const key = nameKey(rest);
    if (key === "") continue;
    let longest: Mention[] = [];
    let length = 0;
    for (const person of find(key)) {
      const name = person.name.toLowerCase();
      if (name.length < length || !rest.startsWith(name) || WORD.test(rest.charAt(name.length))) continue;
      if (name.length > length) longest = [];
      longest.push(person);
      length = name.length;
    }
    for (const person of longest) {
      const who = person.account ?? person.id;
      if (!found.has(who) && found.size < MAX_MENTIONS) found.set(who, person);
    }
  }
  return Array.from(found.values());
}

/** Who `text` mentions among the people in the room and the accounts that have been in it; undefined for nobody. */
export function mentionedIn(text: string, roster: Pick<Roster, "named">, accounts: Pick<Accounts, "named">): Mention[] | undefined {
  if (!text.includes("@")) return undefined;
  const mentions = mentionsIn(text, (key) => {
    const online = roster.named(key).map((entry): Mention => {
      const { id, name, account } = toUser(entry);
      return account === undefined ? { id, name } : { id, name, account };
    });
    const here = new Set(online.map((m) => m.account));
    return [...online, ...accounts.named(key).filter((m) => !here.has(m.account))];
  });
  return mentions.length === 0 ? undefined : mentions;
}
