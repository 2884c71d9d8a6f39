import type { MessageFrame, User, WelcomeFrame } from "../protocol";

/**
 * This client as the room has known it during the session: the id of each
 * of its connections (a new one at every reconnect, while the room may
 * still show an earlier one in a list or a message), and the account its
 * token names, the same on every connection.
 */
export class Me {
  readonly #ids = new Set<string>();
  #account: string | undefined;
  #epoch: string | null = null;

  welcomed({ you, epoch }: Pick<WelcomeFrame, "you" | "epoch">): void {
    // Another history is another room's life, whose connection counter started over: its ids are other people's.
    if (epoch !== this.#epoch) this.#ids.clear();
    this.#epoch = epoch;
    this.#ids.add(you.id);
    this.#account = you.account;
  }

  /** Whether this user id is one of this client's connections. */
  is(id: User["id"]): boolean {
    return this.#ids.has(id);
  }

  /** Whether a message (or an edit's new text) mentions this client: one of its connections, or its account. */
  mentionedIn(message: Pick<MessageFrame, "mentions">): boolean {
    const account = this.#account;
    return message.mentions?.some((m) => this.#ids.has(m.id) || (account !== undefined && m.account === account)) ?? false;
  }

  /** Whether this client wrote a message: on one of its connections, or on another device of its account. */
  wrote(message: Pick<MessageFrame, "user">): boolean {
    const account = this.#account;
    return this.#ids.has(message.user.id) || (account !== undefined && message.user.account === account);
  }
}
