import type { MyRoom } from "../../protocol";
import { ChatClient, type ChatError } from "../chat-client";
import { $, element } from "./dom";
import { explain } from "./words";

/** The list asks the server at most this often: on every change of this room's unread count, and at least this often for the others. */
const REFRESH_MS = 60_000;

/** Words for a room's badge, for a screen reader: `3 unread, 1 mention`. */
export function unreadWords(unread: number, mentions: number): string {
  const words = [`${unread} unread`];
  if (mentions > 0) words.push(mentions === 1 ? "1 mention" : `${mentions} mentions`);
  return words.join(", ");
}

/**
 * The side list of a person's rooms and direct conversations, with what is
 * unread in each, and the form that opens a direct conversation; shown only
 * to a page holding a token for every room.
 */
export class RoomList {
  readonly #token: string;
  readonly #current: string;
  readonly #list = $<HTMLUListElement>("my-rooms");
  #loadedAt = -Infinity;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(chat: ChatClient, token: string, current: string) {
    this.#token = token;
    this.#current = current;
    $("rooms-nav").hidden = false;
    chat.on("unread", () => this.#refresh());
    setInterval(() => this.#refresh(), REFRESH_MS);
    void this.#load();
    const form = $<HTMLFormElement>("dm-form");
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.#openDirect();
    });
  }

  /** Loads the list again as soon as the last load is `REFRESH_MS` old. */
  #refresh(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setTimeout(
      () => {
        this.#timer = undefined;
        void this.#load();
      },
      Math.max(0, this.#loadedAt + REFRESH_MS - performance.now()),
    );
  }

  async #load(): Promise<void> {
    this.#loadedAt = performance.now();
    try {
      const { rooms } = await ChatClient.myRooms(location.origin, this.#token);
      // The room joins the account's list just after the socket's welcome: until then, the page knows it is here.
      const here = rooms.some(({ room }) => room === this.#current) ? [] : [{ room: this.#current, lastSeq: 0, lastAt: null, read: 0, unread: 0, mentions: 0 }];
      this.#list.replaceChildren(...[...here, ...rooms].map((room) => this.#item(room)));
      // A direct conversation's name says nothing to a person: the page is titled by whom it is with.
      const direct = rooms.find(({ room }) => room === this.#current)?.with;
      if (direct !== undefined) {
        $("room-name").textContent = `Conversation with ${direct}`;
        document.title = `${direct} · Edge chat`;
      }
      $("rooms-error").hidden = true;
    } catch (error) {
      const shown = $("rooms-error");
      shown.hidden = false;
      shown.textContent = `Your rooms can't be listed: ${explain(error as ChatError)}`;
    }
  }

  #item(room: MyRoom): HTMLLIElement {
    const item = element("li", room.with === undefined ? "" : "direct");
    const link = element("a", "");
    link.href = `/rooms/${encodeURIComponent(room.room)}`;
    if (room.room === this.#current) link.setAttribute("aria-current", "page");
    link.append(element("span", "name", room.with ?? room.room));
    // A screen reader hears the room and its badge as words, in one label.
    const label = room.with === undefined ? room.room : `Direct conversation with ${room.with}`;
    link.setAttribute("aria-label", room.unread > 0 ? `${label}, ${unreadWords(room.unread, room.mentions)}` : label);
    if (room.unread > 0) {
      const badge = element(
        "span",
        room.mentions > 0 ? "badge mentioned" : "badge",
        room.mentions > 0 ? `${room.unread} @${room.mentions}` : String(room.unread),
      );
      badge.setAttribute("aria-hidden", "true");
      link.append(badge);
    }
    item.append(link);
    return item;
  }

  async #openDirect(): Promise<void> {
    const input = $<HTMLInputElement>("dm-input");
    const error = $("dm-error");
    const to = input.value.trim();
    if (to === "") return;
    try {
      const direct = await ChatClient.openDirect(location.origin, this.#token, to);
      location.assign(`/rooms/${encodeURIComponent(direct.room)}`);
    } catch (failure) {
      error.hidden = false;
      error.textContent = `Can't open a conversation with ${to}: ${explain(failure as ChatError)}`;
    }
  }
}
