import { toText, type PresenceFrame, type User, type UsersFrame, type WelcomeFrame } from "../../protocol";
import type { ChatClient, ChatError } from "../chat-client";
import { showError } from "./composer";
import { $, element } from "./dom";
import { notice } from "./message-list";
import { explain } from "./words";

/**
 * Who is in the room: the list, page by page, with a moderator's buttons
 * beside everyone else; how many are online; and the server's clock.
 */
export class UserList {
  readonly #chat: ChatClient;
  /** Who the room says the reader is, once welcomed. */
  readonly #you: () => User | null;
  #serverTime: number | null = null;
  /** Everyone in the room, of whom the list may show only the first pages. */
  #online = 0;
  /** The last user of the last page of the list received, where the next page starts. */
  #pagedThrough: string | null = null;
  /** Everyone the list shows, by id. */
  readonly #listed = new Map<string, User>();

  constructor(chat: ChatClient, you: () => User | null) {
    this.#chat = chat;
    this.#you = you;
  }

  /** The names of everyone else the list shows, each once, in its order: whom the reader can mention. */
  names(): string[] {
    const you = this.#you()?.id;
    return [...new Set([...this.#listed.values()].filter((user) => user.id !== you).map((user) => user.name))];
  }

  welcome(frame: WelcomeFrame): void {
    this.#serverTime = frame.at;
    this.#users(frame, false);
  }

  presence(frame: PresenceFrame): void {
    const { joined, renamed, left } = frame;
    // In a room too large to name who comes and goes, only the count changes.
    if (joined.length + renamed.length + left.length > 0) notice(toText(frame)!);
    for (const user of joined) this.#addUser(user);
    for (const { user } of renamed) {
      const entry = this.#entry(user.id);
      if (entry) entry.firstChild!.textContent = user.name;
      if (this.#listed.has(user.id)) this.#listed.set(user.id, user);
    }
    for (const { user } of left) {
      this.#entry(user.id)?.remove();
      this.#listed.delete(user.id);
    }
    this.#online = frame.online;
    this.#count();
  }

  tick(frame: { now: number; online: number }): void {
    this.#serverTime = frame.now;
    this.#online = frame.online;
    this.#count();
  }

  #users(frame: Pick<UsersFrame, "users" | "online">, next: boolean): void {
    if (!next) {
      $("users").replaceChildren();
      this.#listed.clear();
    }
    for (const user of frame.users) this.#addUser(user);
    this.#pagedThrough = frame.users.at(-1)?.id ?? this.#pagedThrough;
    this.#online = frame.online;
    this.#count();
  }

  #clock(online: number): void {
    if (this.#serverTime === null) return;
    $("clock").textContent = `Server time ${new Date(this.#serverTime).toLocaleTimeString()} · ${online} online`;
  }

  #entry(id: string): HTMLLIElement | null {
    return $("users").querySelector(`li[data-id="${CSS.escape(id)}"]`);
  }

  /** Adds someone to the list, unless they are on it: pages and presence may both name them. */
  #addUser(user: User): void {
    if (this.#entry(user.id)) return;
    this.#listed.set(user.id, user);
    const entry = element("li", "");
    entry.append(document.createTextNode(user.name));
    entry.dataset.id = user.id;
    if (user.id === this.#you()?.id) entry.append(element("span", "hint", " (you)"));
    else if (this.#you()?.moderator) entry.append(this.#moderation(user));
    const more = $("users").querySelector("li.more");
    if (more === null) $("users").append(entry);
    else more.before(entry);
  }

  /** A moderator's buttons beside someone in the list. */
  #moderation(user: User): HTMLElement {
    const actions = element("span", "moderation", "");
    const button = (label: string, act: () => void) => {
      const b = element("button", "", label);
      b.type = "button";
      b.title = `${label} ${user.name}`;
      b.addEventListener("click", act);
      actions.append(b);
    };
    const act = (action: "kick" | "mute" | "ban", seconds?: number) =>
      this.#chat.moderate(action, user.id, seconds).then(
        (frame) => notice(toText(frame) ?? ""),
        (error: ChatError) => showError(explain(error)),
      );
    button("kick", () => act("kick"));
    button("mute 10 min", () => act("mute", 600));
    button("ban 1 h", () => act("ban", 3600));
    return actions;
  }

  /** The count, and an entry that loads the next page for those the list does not show yet. */
  #count(): void {
    const list = $("users");
    list.querySelector("li.more")?.remove();
    const unlisted = this.#online - list.querySelectorAll("li[data-id]").length;
    const after = this.#pagedThrough;
    if (unlisted > 0 && after !== null) {
      const more = element("li", "more");
      const button = element("button", "", `and ${unlisted} more`);
      button.type = "button";
      button.addEventListener("click", () =>
        this.#chat.who(after).then(
          (frame) => this.#users(frame, true),
          (error: ChatError) => showError(explain(error)),
        ),
      );
      more.append(button);
      list.append(more);
    }
    $("online-count").textContent = `(${this.#online})`;
    this.#clock(this.#online);
  }
}
