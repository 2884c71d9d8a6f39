import type { Refusal, User, WelcomeFrame } from "../../protocol";
import type { ChatClient, ConnectionState } from "../chat-client";
import { forgetTokenInAddress } from "./address";
import { enableComposer } from "./composer";
import { $ } from "./dom";
import { MentionComplete } from "./mention-complete";
import { mentionsReader } from "./mentions";
import { MessageList, notice } from "./message-list";
import { NewMessagesLine } from "./new-messages-line";
import { ReplyDraft } from "./reply-draft";
import { SearchBox } from "./search-box";
import { ThreadView } from "./thread-view";
import { showTyping } from "./typing-line";
import { UserList } from "./user-list";
import { refusedWords } from "./words";

/** The chat page: renders what the room's client hears, and hands it what the reader does. */
export class RoomView {
  readonly #chat: ChatClient;
  #you: User | null = null;
  readonly #messages: MessageList;
  readonly #users: UserList;
  readonly #draft = new ReplyDraft();
  readonly #thread: ThreadView;
  /** Live until the last state change: losing that is worth a notice. */
  #open = false;
  /** Why the room refused the last attempt, for the `waiting` state that follows. */
  #refusal: string | null = null;

  constructor(chat: ChatClient) {
    this.#chat = chat;
    this.#thread = new ThreadView(
      chat,
      (frame) => mentionsReader(frame.mentions, chat, this.#you),
      (text, replyTo) => this.#messages.send(text, replyTo),
    );
    this.#messages = new MessageList(chat, () => this.#you, {
      reply: (seq, author, text) => this.#draft.start(seq, author, text),
      thread: (seq, opener) => this.#thread.open(seq, opener),
    });
    this.#users = new UserList(chat, () => this.#you);
    new MentionComplete($("text"), () => this.#users.names());
    chat.on("state", ({ state, retryInMs, reason }) => this.#status(state, retryInMs, reason));
    chat.on("welcome", (frame) => this.#welcome(frame));
    chat.on("message", (frame) => {
      this.#messages.message(frame);
      this.#thread.message(frame);
    });
    chat.on("change", (frame) => this.#messages.changed(frame));
    chat.on("typing", (typing) => showTyping(typing));
    chat.on("reset", () => {
      this.#draft.clear();
      this.#thread.close();
      this.#messages.reset();
    });
    chat.on("gap", () => notice("Some messages you missed are no longer kept.", "warning"));
    chat.on("presence", (frame) => this.#users.presence(frame));
    chat.on("tick", (frame) => this.#users.tick(frame));
    chat.on("refused", ({ refusal, retryInMs }) => this.#refused(refusal, retryInMs));
    // After the log's own listeners, so that it places the line among the messages as shown.
    new NewMessagesLine(chat);
    new SearchBox(chat, (seq) => this.#messages.show(seq));
  }

  /** Sends a message the reader wrote: a reply, if a quote above the composer says so. */
  send(text: string): void {
    this.#messages.send(text, this.#draft.seq ?? undefined);
    this.#draft.clear();
  }

  /** Tells the room whether the reader is writing. */
  typing(active: boolean): void {
    this.#chat.typing(active);
  }

  #status(state: ConnectionState, retryInMs?: number, reason?: string): void {
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
    // Once welcomed, what the reader writes waits for the connection to come back.
    enableComposer(state === "open" || this.#you !== null);
  }

  /** A refusal to retry is shown by the `waiting` state that follows it; a final one ends the session here. */
  #refused(refusal: Refusal, retryInMs: number | null): void {
    const status = $("status");
    const reason = refusedWords(refusal);
    if (retryInMs !== null) {
      this.#refusal = reason;
      return;
    }
    status.dataset.state = "refused";
    status.textContent = "Not connected";
    notice(reason, "warning");
    enableComposer(false);
  }

  #welcome(frame: WelcomeFrame): void {
    const reconnect = this.#you !== null;
    this.#you = frame.you;
    this.#users.welcome(frame);
    this.#messages.welcome(frame);
    enableComposer(true);
    if (!reconnect) notice(`Welcome to ${frame.room}, ${frame.you.name}.`);
    else notice("Reconnected.");
    forgetTokenInAddress();
  }
}
