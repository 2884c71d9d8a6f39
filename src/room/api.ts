import { senderOfIdentity, type Identity } from "../auth/token";
import { Buckets, readCost } from "../sockets/buckets";
import type {
  DeleteFrame,
  DeleteRequest,
  ErrorFrame,
  MessagePage,
  ModeratedFrame,
  ModerationFrame,
  ReactionRequest,
  Refusal,
  RoomInfo,
  SearchPage,
  ThreadPage,
} from "../protocol";
import { addressKey } from "./addresses";
import { tooMany } from "./admission";
import type { Broadcast } from "./broadcast";
import type { TypingIndicator } from "./typing";
import { HTTP_USER_ID, missing } from "./changes";
import { split } from "./replay";
import type { RoomParts } from "./parts";
import type { Expel } from "./peer";
import { mentionedIn } from "./mentions";
import { moderate, personOf } from "./sanctions";
import { refusalOf, type Published, type Stored } from "./sequencer";

/**
 * Who makes an HTTP request of the room, as the Worker found them. Sanctions
 * and limits judge them as the `Person` that `personOf` makes of this, with
 * their address keyed as sockets' are.
 */
export interface Caller {
  /** `CF-Connecting-IP`. */
  address: string;
  /** `?client=`, already checked. */
  client: string | null;
  /** Who their token names, if they sent one. */
  identity: Identity | null;
}

/** A message posted over HTTP, already checked by the Worker. */
export interface Post extends Caller {
  name: string;
  text: string;
  replyTo?: number;
  id?: string;
}

/** A reaction over HTTP, already checked by the Worker, from a caller with a token or a `?client=`. */
export interface HttpReaction extends Caller {
  name: string;
  reaction: ReactionRequest;
}

export type PostResult = Stored | { ok: false; refusal: Refusal };

/** What the room answers a read with: what was asked for, or why not. */
export type Read<T> = T | { refusal: Refusal };

/** What the API needs of the room besides its parts. */
export interface ApiLinks {
  broadcast: Broadcast;
  expel: Expel;
  /** Who is typing, which a mute ends. */
  typing: Pick<TypingIndicator, "stop">;
  /** Keeps the alarm, and gives storage back if nothing is left to keep (see `Upkeep.settle`). */
  settle(): Promise<void>;
}

/**
 * What the room answers the Worker's HTTP API with (`/api/rooms/<room>…`):
 * its state, pages of its history, posts and moderation. Reads and posts
 * each have a budget per address, kept in memory.
 */
export class RoomApi {
  readonly #postBuckets = new Buckets();
  readonly #readBuckets = new Buckets();

  constructor(
    private readonly parts: Pick<
      RoomParts,
      "name" | "config" | "store" | "history" | "search" | "sequencer" | "sockets" | "roster" | "accounts" | "sanctions" | "direct" | "schedule"
    > &
      ApiLinks,
  ) {}

  /** The room's state for `GET /api/rooms/<room>`. */
  info(caller: Caller): Read<RoomInfo> {
    const { name, history, sockets, roster } = this.parts;
    const refused = this.#readRefusal(caller, 1);
    if (refused !== null) return { refusal: refused };
    const users = roster.users();
    const objects = (sockets.size > 0 ? 1 : 0) + roster.shards().length;
    return { room: name, online: users.length, users, lastSeq: history.lastSeq, objects };
  }

  /**
   * A page of messages for `GET /api/rooms/<room>/messages`: the latest
   * `limit`, or the first `limit` entries after `since`, as a history frame
   * has them.
   */
  messages(since: number | null, limit: number, caller: Caller): Read<MessagePage> {
    const { history, store } = this.parts;
    const refused = this.#readRefusal(caller, readCost(limit));
    if (refused !== null) return { refusal: refused };
    const { oldestSeq, lastSeq } = history;
    const entries = since === null ? history.latest(limit) : history.after(since, limit);
    return { ...split(entries), oldestSeq, lastSeq, gap: since !== null && history.trimmedAfter(since), epoch: store.epoch };
  }

  /** A page of message `seq`'s thread for `GET /api/rooms/<room>/messages?thread=`: its first `limit` replies after `after`. */
  thread(seq: number, after: number, limit: number, caller: Caller): Read<ThreadPage> {
    const refused = this.#readRefusal(caller, readCost(limit));
    if (refused !== null) return { refusal: refused };
    const thread = this.parts.history.thread(seq, after, limit);
    if (thread === null) return { refusal: { status: 404, ...codeAndMessage(missing(seq, null)) } };
    return { seq, ...thread };
  }

  /**
   * A page of search results for `GET /api/rooms/<room>/search` (see
   * `MessageSearch.find`): refused to the banned, as any read is, and taken
   * from the address's search budget, which its sockets share, not its read budget.
   */
  search(q: string, before: number | null, limit: number, caller: Caller): Read<SearchPage> {
    const now = Date.now();
    const banned = this.#sanctioned(caller, now, false);
    if (banned !== null) return { refusal: banned };
    return this.parts.search.find(q, before, limit, addressKey(caller.address), now);
  }

  /**
   * Stores and broadcasts a message posted over HTTP, exactly as if a socket
   * had sent it, unless its poster is banned or muted or its address is
   * over the rate limit. HTTP posters have sender scopes of their own
   * (`post:…`), so no socket is ever the author of what they post.
   */
  async post(post: Post): Promise<PostResult> {
    const { sequencer, roster, accounts } = this.parts;
    const now = Date.now();
    const refused = this.#writeRefusal(post, now, "messages");
    if (refused !== null) return { ok: false, refusal: refused };
    const { text, replyTo, id } = post;
    const mentions = mentionedIn(text, roster, accounts);
    return this.#stored(sequencer.publish({ user: { id: HTTP_USER_ID, name: post.name }, text, at: now, sender: httpSender(post), id, replyTo, mentions }));
  }

  /**
   * A reaction over HTTP, as from a socket, under the poster's own sender
   * scope: one per token account, or per `?client=`. It takes from the
   * address's post budget.
   */
  async react({ name, reaction, ...caller }: HttpReaction): Promise<PostResult> {
    const now = Date.now();
    const refused = this.#writeRefusal(caller, now, "reactions");
    if (refused !== null) return { ok: false, refusal: refused };
    const { type: kind, seq: target, emoji, id } = reaction;
    const actor = { user: { id: HTTP_USER_ID, name }, sender: httpSender(caller), moderator: false };
    return this.#stored(this.parts.sequencer.change({ kind, target, text: emoji, id }, actor, now));
  }

  /** Why a write over HTTP is refused: a ban or mute, or its address's post budget. */
  #writeRefusal(caller: Caller, now: number, what: string): Refusal | null {
    const sanction = this.#sanctioned(caller, now, true);
    if (sanction !== null) return sanction;
    const verdict = this.#postBuckets.take(addressKey(caller.address), this.parts.config.rateLimitPer10s, now);
    return verdict.ok ? null : tooMany(what, verdict.retryAfterMs);
  }

  /** Sends what was stored, keeps the alarm, and answers: a missing message is a 404, any other refusal a 400. */
  async #stored(published: Published): Promise<PostResult> {
    await this.parts.broadcast.whenStored();
    await this.parts.schedule.arm();
    if (published.ok || published.code === "id_conflict") return published;
    const { error } = published;
    return { ok: false, refusal: { status: error.code === "unknown_message" ? 404 : 400, ...codeAndMessage(error) } };
  }

  /**
   * A moderation over HTTP (`POST /api/rooms/<room>/moderation`), from the
   * moderator's token the Worker has checked: the same as from a socket. A
   * delete is answered with the frame everyone got.
   */
  async moderation(frame: ModerationFrame | DeleteRequest, moderator: Caller & { identity: Identity }): Promise<ModeratedFrame | DeleteFrame | Refusal> {
    const { sequencer, sanctions, roster, broadcast, expel, typing } = this.parts;
    const now = Date.now();
    const { identity } = moderator;
    const sanction = this.#sanctioned(moderator, now, frame.type === "delete");
    if (sanction !== null) return sanction;
    let answer: ModeratedFrame | DeleteFrame | ErrorFrame;
    if (frame.type === "delete") {
      const actor = { user: { id: HTTP_USER_ID, name: identity.name }, sender: senderOfIdentity(identity) ?? HTTP_USER_ID, moderator: true };
      const published = sequencer.change({ kind: "delete", target: frame.seq }, actor, now);
      answer = published.ok ? { type: "delete", seq: frame.seq, change: published.seq, deletedAt: now } : refusalOf(published);
      await broadcast.whenStored();
    } else {
      answer = moderate(frame, now, sanctions, roster, { expel, hush: (held) => typing.stop(held.id) });
    }
    await this.parts.settle();
    return answer.type === "error" ? { status: 404, code: answer.code, message: answer.message } : answer;
  }

  /**
   * Why an HTTP read is refused: a ban, or its address's read budget, which
   * a read of `cost` pages takes from; null if it may go ahead.
   */
  #readRefusal(caller: Caller, cost: number): Refusal | null {
    const now = Date.now();
    const banned = this.#sanctioned(caller, now, false);
    if (banned !== null) return banned;
    const verdict = this.#readBuckets.take(addressKey(caller.address), this.parts.config.rateLimitPer10s, now, cost);
    if (verdict.ok) return null;
    return tooMany("reads", verdict.retryAfterMs);
  }

  /** What the room refuses an HTTP caller now, reading or `writing`: someone else's direct conversation, or its sanctions. */
  #sanctioned({ address, client, identity }: Caller, now: number, writing: boolean): Refusal | null {
    const person = personOf(addressKey(address), client, identity);
    return this.parts.direct.refusal(person) ?? this.parts.sanctions.refusal(person, now, writing);
  }
}

/** HTTP posters' sender scope: their own, which no socket shares, so that no socket is ever the author of what they post. */
function httpSender({ identity, client }: Caller): string {
  return `post:${senderOfIdentity(identity) ?? client ?? ""}`;
}

function codeAndMessage({ code, message }: ErrorFrame): { code: string; message: string } {
  return { code, message };
}
