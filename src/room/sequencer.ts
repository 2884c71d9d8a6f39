import { changeRefusal, missing, type Actor } from "./changes";
import { replyTo, type ChangeKind, type History, type NewEntry, type Used } from "./history";
import { errorFrame, MAX_EMOJI_PER_MESSAGE, positionOf, type ErrorFrame, type Mention, type SequenceFrame, type User } from "../protocol";

/**
 * What publishing a message comes to: its seq, and whether it was a
 * resend; or, for an id already used for something else, the refusal and
 * the seq that id holds.
 */
export type Stored = { ok: true; seq: number; duplicate: boolean } | { ok: false; code: "id_conflict"; seq: number };

/** What publishing a change comes to: as for a message, or why it may not be made. */
export type Published = Stored | { ok: false; code: "refused"; error: ErrorFrame };

/** An edit, a delete or a reaction of message `target`, as its author, a moderator or anyone asks for it. */
export interface ChangeRequest {
  kind: ChangeKind;
  target: number;
  /** An edit's new text, a reaction's emoji. */
  text?: string;
  /** Who an edit's new text mentions. */
  mentions?: Mention[];
  id?: string;
}

/** A message to store, replying to message `replyTo` if set. */
export type MessageRequest = Omit<NewEntry, "change" | "replyTo"> & { replyTo?: number };

/** A stored entry waiting for its broadcast, and who gets its ack. */
export interface Unsent<To> {
  frame: SequenceFrame;
  ack?: { to: To; id: string };
}

/**
 * The room's single writer: it numbers, stores and deduplicates messages
 * and the changes to them, and holds each stored one until the room
 * broadcasts it, in seq order. `To` is whoever an ack goes to.
 */
export class Sequencer<To> {
  readonly #unsent: Array<Unsent<To>> = [];
  #broadcastSeq: number;

  constructor(
    private readonly history: History,
    private readonly keep: number,
  ) {
    // What an earlier instance stored, it broadcast, or its sockets closed with it.
    this.#broadcastSeq = history.lastSeq;
  }

  /** The newest seq handed to the broadcast. */
  get broadcastSeq(): number {
    return this.#broadcastSeq;
  }

  get hasUnsent(): boolean {
    return this.#unsent.length > 0;
  }

  /**
   * Takes the seq and writes the message in one synchronous step, so nothing
   * can interleave, and queues its broadcast; if the write throws, nothing is
   * queued. A resend of a kept message is answered with its seq and not
   * stored again; the same id with another text is refused, since it cannot
   * be a resend and acknowledging it would lose that text. Once the message
   * was edited or deleted its text is not what was sent, and the id alone
   * answers. A reply needs the message it answers to be kept and not deleted.
   */
  publish(message: MessageRequest, ackTo?: To): Published {
    const { replyTo: target, ...entry } = message;
    const resent = this.#resent(entry);
    if (resent !== null) return resent;
    if (target === undefined) return this.#store(entry, ackTo);
    const kept = this.history.message(target);
    if (kept === null || kept.deleted) return { ok: false, code: "refused", error: missing(target, kept) };
    return this.#store({ ...entry, replyTo: replyTo(kept) }, ackTo);
  }

  /**
   * Edits, deletes or reacts to a message, as `publish` stores a message:
   * numbered, stored and queued at once, and a resend of the same change
   * answered with its seq. An edit goes out under the author's name as
   * stored. A reaction that changes nothing (one already there, or one
   * taken back that was not) takes no seq: it is answered with the
   * message's own.
   */
  change(request: ChangeRequest, actor: Actor & { user: User }, at: number, ackTo?: To): Published {
    const { kind, target, id, mentions } = request;
    const entry: NewEntry = { user: actor.user, text: request.text ?? "", at, sender: actor.sender, id, change: { kind, target } };
    if (mentions !== undefined) entry.mentions = mentions;
    const resent = this.#resent(entry);
    if (resent !== null) return resent;
    const kept = this.history.message(target);
    const refusal = changeRefusal(kind, target, kept, actor);
    if (refusal !== null) return { ok: false, code: "refused", error: refusal };
    if (kind === "edit") return this.#store({ ...entry, user: kept!.user }, ackTo);
    if (kind === "delete") return this.#store(entry, ackTo);
    const { reactions } = this.history;
    const add = kind === "react";
    if (reactions.has(target, entry.text, actor.sender) === add) return { ok: true, seq: target, duplicate: true };
    if (add && reactions.wouldExceed(target, entry.text, MAX_EMOJI_PER_MESSAGE)) {
      const error = errorFrame("too_many_reactions", `a message has reactions with at most ${MAX_EMOJI_PER_MESSAGE} different emoji; add to one of those`);
      return { ok: false, code: "refused", error };
    }
    return this.#store({ ...entry, change: { kind, target, author: kept!.user } }, ackTo);
  }

  /** The answer to a resend of a kept entry, or null when the entry is new. */
  #resent(entry: NewEntry): Stored | null {
    if (entry.id === undefined) return null;
    const used = this.history.used(entry.sender, entry.id);
    if (used === null) return null;
    if (same(used, entry)) return { ok: true, seq: used.seq, duplicate: true };
    return { ok: false, code: "id_conflict", seq: used.seq };
  }

  #store(entry: NewEntry, ackTo: To | undefined): Stored {
    const frame = this.history.append(entry, this.keep);
    const { id } = entry;
    this.#unsent.push(ackTo !== undefined && id !== undefined ? { frame, ack: { to: ackTo, id } } : { frame });
    return { ok: true, seq: positionOf(frame), duplicate: false };
  }

  /** The next entry to broadcast, in seq order, or undefined when none waits. */
  next(): Unsent<To> | undefined {
    const unsent = this.#unsent.shift();
    if (unsent !== undefined) this.#broadcastSeq = positionOf(unsent.frame);
    return unsent;
  }
}

/** Whether a resend asks for what its id already holds: the same message, or the same change. */
function same(used: Used, entry: NewEntry): boolean {
  const { change } = entry;
  if (change === undefined) return used.change === null && (used.changed || used.text === entry.text);
  return used.change?.kind === change.kind && used.change.target === change.target && (change.kind === "delete" || used.text === entry.text);
}

/** What a message or change the room would not store is answered with. */
export function refusalOf(published: Exclude<Published, { ok: true }>): ErrorFrame {
  if (published.code === "refused") return published.error;
  return errorFrame("id_conflict", `this id was already used for something else (#${published.seq}); send it again with a new id`);
}
