import type { User } from "../../protocol";
import type { TypingUsers } from "../chat-client";
import { $ } from "./dom";

/**
 * Who else is typing, in words: `ann is typing…`, `ann and bob are
 * typing…`, `ann, bob and cat are typing…`, `ann, bob and 3 others are
 * typing…`. The room names only the first few of a crowd, and counts all.
 */
export function typingWords(users: User[], count: number): string {
  if (count === 0 || users.length === 0) return "";
  const names = users.map((u) => u.name);
  if (count === 1) return `${names[0]} is typing…`;
  if (count <= 3 && names.length === count) return `${names.slice(0, -1).join(", ")} and ${names.at(-1)} are typing…`;
  const shown = names.slice(0, 2);
  const others = count - shown.length;
  return `${shown.join(", ")} and ${others} ${others === 1 ? "other is" : "others are"} typing…`;
}

/** The line under the messages: a polite live region, so that a screen reader hears it without being interrupted. */
export function showTyping({ users, count }: TypingUsers): void {
  $("typing").textContent = typingWords(users, count);
}
