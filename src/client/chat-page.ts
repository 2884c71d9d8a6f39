import { checkDisplayName, isRoomName, randomHex } from "../protocol/names";
import {
  toText,
  type ChangeFrame,
  type MessageFrame,
  type ModeratedFrame,
  type PresenceFrame,
  type Refusal,
  type User,
  type UsersFrame,
  type WelcomeFrame,
} from "../protocol";
import { ChatClient, type ChatError, type ConnectionState } from "./chat-client";
import { clientId, rememberName, storedName } from "./identity";

// Every piece of user content goes into the page through textContent, never as markup.

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const messages = $<HTMLOListElement>("messages");
const log = messages.parentElement!;
const composer = $<HTMLFormElement>("composer");
const textarea = $<HTMLTextAreaElement>("text");
const sendButton = composer.querySelector("button")!;
const composerError = $<HTMLParagraphElement>("composer-error");

/** Words for the room's error codes; anything else falls back to the room's own message. */
function explain(error: { code: string; message: string }): string {
  switch (error.code) {
    case "too_long":
    case "too_large":
      return "That message is too long to send.";
    case "empty_message":
      return "Write something first.";
    case "bad_name":
      return `That name can't be used: ${error.message}.`;
    default:
      return error.message.charAt(0).toUpperCase() + error.message.slice(1) + ".";
  }
}

/** Words for why the room would not let this page in. */
function refusedWords(refusal: Refusal): string {
  switch (refusal.code) {
    case "token_required":
      return "This room is private: it needs an invitation link with a token.";
    case "token_expired":
      return "Your invitation link has expired. Ask for a new one.";
    case "bad_token":
      return "This invitation link is not valid for this room.";
    case "kicked":
      return "A moderator removed you from the room.";
    case "banned":
      return refusal.until === undefined
        ? "A moderator banned you from this room for a while."
        : `A moderator banned you from this room until ${new Date(refusal.until).toLocaleString([], { dateStyle: "medium", timeStyle: "short" })}.`;
    case "flooding":
      return "The room disconnected you for sending too fast.";
    case "auth_unavailable":
      return "The server can't check invitations right now.";
    case "auth_not_configured":
      return "This room is private, and this server is not set up to check invitations.";
    case "room_full":
      return "The room is full.";
    case "too_many_connections":
      return "Too many connections to this room from your network.";
    case "rate_limited":
      return "Too many connection attempts from your network.";
    default:
      return `Can't join: ${refusal.message}.`;
  }
}

function element<K extends keyof HTMLElementTagNameMap>(tag: K, className: string, text?: string): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function timeOf(at: number): HTMLTimeElement {
  const time = element("time", "", new Date(at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }));
  time.dateTime = new Date(at).toISOString();
  return time;
}

/** Appends to the log, keeping it scrolled to the bottom if the reader was there. */
function append(item: HTMLElement): void {
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  messages.append(item);
  if (atBottom) log.scrollTop = log.scrollHeight;
}

function notice(text: string, kind: "notice" | "warning" = "notice"): void {
  append(element("li", kind, text));
}

function messageItem(from: string, text: string, at: number | null): HTMLLIElement {
  const item = element("li", "message");
  item.append(element("span", "who", from), element("span", "text", text));
  if (at !== null) item.append(timeOf(at));
  return item;
}

function markEdited(item: HTMLLIElement): void {
  if (item.querySelector(".edited") === null) item.querySelector(".text")!.after(element("span", "edited", " (edited)"));
}

/** A deleted message keeps its place, so that nothing looks lost, but neither its author nor its text. */
function markDeleted(item: HTMLLIElement): void {
  stopEditing(item);
  item.classList.add("deleted");
  item.querySelector(".text")!.textContent = "(a message was deleted)";
  for (const gone of item.querySelectorAll(".who, .edited, .actions")) gone.remove();
}

function stopEditing(item: HTMLLIElement): void {
  item.querySelector("form.edit")?.remove();
  item.querySelector<HTMLElement>(".text")!.hidden = false;
}

function showError(text: string | null): void {
  composerError.hidden = text === null;
  composerError.textContent = text ?? "";
}

/** The chat page: renders what the room's client hears, and hands it what the reader does. */
class RoomView {
  readonly #pending = new Map<string, HTMLLIElement>();
  readonly #ownSeqs = new Set<number>();
  readonly #bySeq = new Map<number, HTMLLIElement>();
  #you: User | null = null;
  readonly #chat: ChatClient;
  #serverTime: number | null = null;
  /** Everyone in the room, of whom the list may show only the first pages. */
  #online = 0;
  /** The last user of the last page of the list received, where the next page starts. */
  #pagedThrough: string | null = null;
  /** Live until the last state change: losing that is worth a notice. */
  #open = false;
  /** Why the room refused the last attempt, for the `waiting` state that follows. */
  #refusal: string | null = null;

  constructor(chat: ChatClient) {
    this.#chat = chat;
    chat.on("state", ({ state, retryInMs, reason }) => this.status(state, retryInMs, reason));
    chat.on("welcome", (frame) => this.welcome(frame));
    chat.on("message", (frame) => this.message(frame));
    chat.on("change", (frame) => this.changed(frame));
    chat.on("reset", () => this.reset());
    chat.on("gap", () => notice("Some messages you missed are no longer kept.", "warning"));
    chat.on("presence", (frame) => this.presence(frame));
    chat.on("tick", (frame) => this.tick(frame));
    chat.on("refused", ({ refusal, retryInMs }) => this.refused(refusal, retryInMs));
  }

  /** Sends a message, or again one that was refused, and shows it as pending until the room has it. */
  send(text: string, id: string = randomHex(16)): void {
    this.pending(id, text);
    this.#chat.send(text, { id }).then(
      (seq) => this.acked(id, seq),
      (error: ChatError) => this.failed(id, text, error),
    );
  }

  status(state: ConnectionState, retryInMs?: number, reason?: string): void {
    const status = $("status");
    // Once closed for good, a refusal has said why.
    if (state === "closed") return;
    status.dataset.state = state;
    if (state === "waiting") {
      const wait = `${Math.ceil((retryInMs ?? 0) / 1000)} s`;
      status.textContent = this.#refusal === null ? `Reconnecting in ${wait}` : `${this.#refusal} Retrying in ${wait}`;
      if (this.#open && reason !== undefined) notice(`Connection lost: ${reason}.`, "warning");
    } else {
      status.textContent = state === "open" ? "Connected" : "Connecting…";
    }
    this.#refusal = null;
    this.#open = state === "open";
    const enabled = state === "open";
    textarea.disabled = !enabled && this.#you === null;
    sendButton.disabled = textarea.disabled;
  }

  /** A refusal to retry is shown by the `waiting` state that follows it; a final one ends the session here. */
  refused(refusal: Refusal, retryInMs: number | null): void {
    const status = $("status");
    const reason = refusedWords(refusal);
    if (retryInMs !== null) {
      this.#refusal = reason;
      return;
    }
    status.dataset.state = "refused";
    status.textContent = "Not connected";
    notice(reason, "warning");
    textarea.disabled = true;
    sendButton.disabled = true;
  }

  welcome(frame: WelcomeFrame): void {
    const reconnect = this.#you !== null;
    this.#you = frame.you;
    this.#serverTime = frame.at;
    this.users(frame, false);
    textarea.disabled = false;
    sendButton.disabled = false;
    if (!reconnect) notice(`Welcome to ${frame.room}, ${frame.you.name}.`);
    else notice("Reconnected.");
    forgetTokenInAddress();
  }

  reset(): void {
    messages.replaceChildren();
    this.#bySeq.clear();
    // Seqs count again from the new history: the old ones would mark others' messages as yours.
    this.#ownSeqs.clear();
    notice("The room's history was reset; these are its latest messages.", "warning");
    // What is still being sent, or was refused, is not in any history: it stays on the page, last.
    for (const item of this.#pending.values()) append(item);
  }

  message(frame: MessageFrame): void {
    const item = messageItem(frame.user.name, frame.text, frame.at);
    item.dataset.seq = String(frame.seq);
    // One's own by this page's acks, or by the account a token vouches for, whichever device sent it.
    const account = this.#you?.account;
    if (this.#ownSeqs.has(frame.seq) || (account !== undefined && frame.user.account === account)) item.classList.add("own");
    this.#bySeq.set(frame.seq, item);
    append(item);
    if (frame.deletedAt !== undefined) markDeleted(item);
    else if (frame.editedAt !== undefined) markEdited(item);
    this.#offerChanges(item);
  }

  changed(frame: ChangeFrame): void {
    const item = this.#bySeq.get(frame.seq);
    if (item === undefined) return;
    if (frame.type === "delete") return markDeleted(item);
    stopEditing(item);
    item.querySelector(".text")!.textContent = frame.text;
    markEdited(item);
  }

  /** Edit and delete on one's own messages, and for a moderator delete on everyone's. */
  #offerChanges(item: HTMLLIElement): void {
    const own = item.classList.contains("own");
    if (item.classList.contains("deleted") || item.querySelector(".actions") !== null || (!own && !this.#you?.moderator)) return;
    const seq = Number(item.dataset.seq);
    const actions = element("span", "actions");
    const button = (label: string, act: () => void) => {
      const b = element("button", "", label);
      b.type = "button";
      b.addEventListener("click", act);
      actions.append(b);
    };
    if (own) button("edit", () => this.#startEditing(item, seq));
    button("delete", () => {
      if (confirm("Delete this message for everyone?")) this.#chat.delete(seq).catch((error: ChatError) => this.error(error));
    });
    item.append(actions);
  }

  /** Swaps a message's text for a field holding it; Enter saves, Escape gives up. */
  #startEditing(item: HTMLLIElement, seq: number): void {
    if (item.querySelector("form.edit") !== null) return;
    const text = item.querySelector<HTMLElement>(".text")!;
    const form = element("form", "edit");
    const input = element("input", "");
    input.value = text.textContent ?? "";
    input.setAttribute("aria-label", "New text");
    const save = element("button", "", "Save");
    save.type = "submit";
    form.append(input, save);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const value = input.value.trim();
      if (value !== "" && value !== text.textContent) this.#chat.edit(seq, value).catch((error: ChatError) => this.error(error));
      stopEditing(item);
    });
    input.addEventListener("keydown", (event) => {
      if (event.key === "Escape") stopEditing(item);
    });
    text.hidden = true;
    text.after(form);
    input.focus();
  }

  presence(frame: PresenceFrame): void {
    const { joined, renamed, left } = frame;
    // In a room too large to name who comes and goes, only the count changes.
    if (joined.length + renamed.length + left.length > 0) notice(toText(frame)!);
    for (const user of joined) this.#addUser(user);
    for (const { user } of renamed) {
      const entry = this.#entry(user.id);
      if (entry) entry.firstChild!.textContent = user.name;
    }
    for (const { user } of left) this.#entry(user.id)?.remove();
    this.#online = frame.online;
    this.#count();
  }

  users(frame: Pick<UsersFrame, "users" | "online">, next: boolean): void {
    if (!next) $("users").replaceChildren();
    for (const user of frame.users) this.#addUser(user);
    this.#pagedThrough = frame.users.at(-1)?.id ?? this.#pagedThrough;
    this.#online = frame.online;
    this.#count();
  }

  tick(frame: { now: number; online: number }): void {
    this.#serverTime = frame.now;
    this.#online = frame.online;
    this.#count();
  }

  #clock(online: number): void {
    if (this.#serverTime === null) return;
    $("clock").textContent = `Server time ${new Date(this.#serverTime).toLocaleTimeString()} · ${online} online`;
  }

  pending(id: string, text: string): void {
    let item = this.#pending.get(id);
    if (item === undefined) {
      item = messageItem(this.#you?.name ?? "you", text, null);
      this.#pending.set(id, item);
      append(item);
    }
    item.className = "message own pending";
    item.querySelector(".state")?.remove();
    item.append(element("span", "state visually-hidden", "(sending)"));
  }

  acked(id: string, seq: number): void {
    this.#ownSeqs.add(seq);
    const item = this.#bySeq.get(seq);
    if (item !== undefined) {
      item.classList.add("own");
      item.querySelector(".actions")?.remove();
      this.#offerChanges(item);
    }
    this.#pending.get(id)?.remove();
    this.#pending.delete(id);
    showError(null);
  }

  failed(id: string, text: string, error: ChatError): void {
    const item = this.#pending.get(id);
    const reason = explain(error);
    showError(reason);
    if (item === undefined) return;
    item.className = "message own failed";
    item.querySelector(".state")?.remove();
    const state = element("span", "state", ` Not sent: ${reason} `);
    const retry = element("button", "", "Retry");
    retry.type = "button";
    retry.addEventListener("click", () => this.send(text, id));
    state.append(retry);
    item.append(state);
  }

  error(error: ChatError): void {
    showError(explain(error));
  }

  #entry(id: string): HTMLLIElement | null {
    return $("users").querySelector(`li[data-id="${CSS.escape(id)}"]`);
  }

  /** Adds someone to the list, unless they are on it: pages and presence may both name them. */
  #addUser(user: User): void {
    if (this.#entry(user.id)) return;
    const entry = element("li", "");
    entry.append(document.createTextNode(user.name));
    entry.dataset.id = user.id;
    if (user.id === this.#you?.id) entry.append(element("span", "hint", " (you)"));
    else if (this.#you?.moderator) entry.append(this.#moderation(user));
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
        (frame) => this.moderated(frame),
        (error: ChatError) => this.error(error),
      );
    button("kick", () => act("kick"));
    button("mute 10 min", () => act("mute", 600));
    button("ban 1 h", () => act("ban", 3600));
    return actions;
  }

  moderated(frame: ModeratedFrame): void {
    notice(toText(frame) ?? "");
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
          (frame) => this.users(frame, true),
          (error: ChatError) => this.error(error),
        ),
      );
      more.append(button);
      list.append(more);
    }
    $("online-count").textContent = `(${this.#online})`;
    this.#clock(this.#online);
  }
}

function roomFromPath(): string | null {
  const match = /^\/rooms\/([^/]+)$/.exec(location.pathname);
  if (match === null) return null;
  try {
    const room = decodeURIComponent(match[1]!);
    return isRoomName(room) ? room : null;
  } catch {
    return null;
  }
}

/**
 * Once in, the token leaves the address bar (the session keeps it for
 * reconnecting), so that it is not shared with a screenshot, a copied link
 * or the history.
 */
function forgetTokenInAddress(): void {
  const url = new URL(location.href);
  if (!url.searchParams.has("token")) return;
  url.searchParams.delete("token");
  history.replaceState(history.state, "", url);
}

function join(room: string, name: string | null, token: string | null): void {
  if (name !== null) rememberName(name);
  $("name-form").hidden = true;
  const url = new URL(`/rooms/${encodeURIComponent(room)}`, location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  const chat = new ChatClient({ url: url.href, clientId: clientId(), ...(name !== null && { name }), ...(token !== null && { token }) });
  const view = new RoomView(chat);

  composer.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = textarea.value.trim();
    if (text === "") return;
    view.send(text);
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

function askForName(room: string, problem: string | null): void {
  const form = $<HTMLFormElement>("name-form");
  const input = $<HTMLInputElement>("name-input");
  const error = $<HTMLParagraphElement>("name-error");
  form.hidden = false;
  error.hidden = problem === null;
  error.textContent = problem ?? "";
  input.focus();
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const checked = checkDisplayName(input.value);
    if (!checked.ok) {
      error.hidden = false;
      error.textContent = `That name can't be used: ${checked.message}.`;
      return;
    }
    join(room, checked.name, null);
  });
}

const room = roomFromPath();
if (room === null) {
  $("room-name").textContent = "No such room";
  notice("This address does not name a room. Go back to the lobby to pick one.", "warning");
} else {
  $("room-name").textContent = room;
  document.title = `${room} · Edge chat`;
  const query = new URLSearchParams(location.search);
  const token = query.get("token");
  const given = query.get("name") ?? storedName();
  const checked = given === null ? null : checkDisplayName(given);
  // A token names its holder, so a link with one needs nothing more.
  if (token !== null) join(room, null, token);
  else if (checked?.ok) join(room, checked.name, null);
  else askForName(room, checked && !checked.ok ? `That name can't be used: ${checked.message}.` : null);
}
