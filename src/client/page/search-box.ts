import type { SearchFrame, SearchResult } from "../../protocol";
import type { ChatClient, ChatError } from "../chat-client";
import { $, element } from "./dom";
import { explain } from "./words";

/** A snippet's text, each word the room marked `[`so`]` highlighted. */
export function snippetNodes(snippet: string): Node[] {
  const nodes: Node[] = [];
  for (const part of snippet.split(/(\[[^\]]*\])/)) {
    if (part === "") continue;
    nodes.push(part.startsWith("[") && part.endsWith("]") ? element("mark", "", part.slice(1, -1)) : document.createTextNode(part));
  }
  return nodes;
}

/** Words for why a search failed. */
function searchError(error: ChatError): string {
  if (error.code === "bad_query") return `That search can't be read (${error.message}). Put words in double quotes to look for them as written.`;
  return explain(error);
}

/**
 * The search box: the room's messages that match, newest first, a page at a
 * time; each result takes the reader to its message when the log shows it.
 */
export class SearchBox {
  readonly #chat: ChatClient;
  /** Scrolls to and focuses message `seq`; false when the log does not show it. */
  readonly #show: (seq: number) => boolean;
  readonly #input = $<HTMLInputElement>("search-input");
  readonly #results = $<HTMLOListElement>("search-results");
  readonly #status = $<HTMLParagraphElement>("search-status");
  readonly #more = $<HTMLButtonElement>("search-more");
  #query = "";
  #last: number | undefined;
  /** Counts searches, so that an answer to a query the reader has since replaced is dropped. */
  #asked = 0;

  constructor(chat: ChatClient, show: (seq: number) => boolean) {
    this.#chat = chat;
    this.#show = show;
    $<HTMLFormElement>("search-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const q = this.#input.value.trim();
      if (q === "") return;
      this.#query = q;
      this.#results.replaceChildren();
      void this.#search(undefined);
    });
    this.#more.addEventListener("click", () => void this.#search(this.#last));
  }

  async #search(before: number | undefined): Promise<void> {
    const asked = ++this.#asked;
    this.#more.hidden = true;
    this.#status.textContent = "Searching…";
    let frame: SearchFrame;
    try {
      frame = await this.#chat.search(this.#query, before);
    } catch (error) {
      if (asked === this.#asked) this.#status.textContent = searchError(error as ChatError);
      return;
    }
    if (asked !== this.#asked) return;
    for (const result of frame.results) this.#results.append(this.#result(result));
    this.#last = frame.results.at(-1)?.seq;
    this.#more.hidden = !frame.more;
    const count = this.#results.childElementCount;
    const found =
      count === 0 ? `No messages match “${this.#query}”.` : `${count}${frame.more ? " or more" : ""} ${count === 1 ? "message matches" : "messages match"}.`;
    this.#status.textContent = frame.partial ? `${found} Older messages are still being indexed: some may be missing.` : found;
  }

  #result(result: SearchResult): HTMLLIElement {
    const item = element("li", "");
    const button = element("button", "search-result");
    button.type = "button";
    button.dataset.seq = String(result.seq);
    button.append(element("span", "who", result.user.name), ...snippetNodes(result.snippet));
    const at = element("time", "", new Date(result.at).toLocaleString([], { dateStyle: "short", timeStyle: "short" }));
    at.dateTime = new Date(result.at).toISOString();
    button.append(at);
    button.addEventListener("click", () => {
      if (!this.#show(result.seq)) this.#status.textContent = "That message is older than what the log shows.";
    });
    item.append(button);
    return item;
  }
}
