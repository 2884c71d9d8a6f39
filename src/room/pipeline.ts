import { renewal, verifyToken, type TokenKeys } from "../auth/token";
import { describe, log } from "../platform/log";
import {
  belongsTo,
  errorFrame,
  exceedsBytes,
  parseClientFrame,
  type AckFrame,
  type BatchingFrame,
  type Bucket,
  type ClientFrame,
  type ErrorFrame,
  type HistoryFrame,
  type Lane,
  type ModeratedFrame,
  type RenamedFrame,
  type RenewedFrame,
  SEARCH_RESULTS,
  type SearchFrame,
  type ServerFrame,
  type ThreadFrame,
  type UsersFrame,
} from "../protocol";
import { Buckets } from "../sockets/buckets";
import { slowDown } from "../sockets/socket-object";
import type { OwnVerdict, Payload } from "../sockets/socket-set";
import type { Broadcast } from "./broadcast";
import { missing } from "./changes";
import type { ReplayFrom } from "./replay";
import type { RoomParts } from "./parts";
import { mentionedIn } from "./mentions";
import type { Expel, Peer } from "./peer";
import type { Receipts } from "./receipts";
import type { TypingIndicator } from "./typing";
import { accountOf, senderOf, toUser } from "./roster";
import { moderate } from "./sanctions";
import { refusalOf, type Published } from "./sequencer";

/** What answers a client's request: the frames that carry its `id` back. */
type Answer = AckFrame | BatchingFrame | HistoryFrame | ThreadFrame | SearchFrame | UsersFrame | RenamedFrame | RenewedFrame | ModeratedFrame | ErrorFrame;

/** The frames that write to the room, which a mute refuses. */
const WRITES: ReadonlySet<string> = new Set(["message", "edit", "delete", "rename", "typing", "react", "unreact"] satisfies ClientFrame["type"][]);

/** What the pipeline needs of the room besides its parts. */
export interface PipelineLinks {
  broadcast: Broadcast;
  typing: TypingIndicator;
  receipts: Receipts;
  expel: Expel;
  /** The history frame for a join or a `history` request. */
  replay(from: ReplayFrom): HistoryFrame;
  /** Where tokens are checked, for a renewal. */
  keys: TokenKeys;
  /** Sends what the frames stored and keeps the alarm: the room's work after any frames. */
  afterFrames(): Promise<void>;
}

/**
 * What the room does with a frame from anyone in it, on its own sockets or
 * a shard's. The frame passes the gates first (its address's share of the
 * rate limit, its size, its parse, the sender's sanctions); then the room
 * does what it asks and answers it. Answers keep the order of the frames
 * they answer, a token renewal's too, though checking a token takes time.
 */
export class FramePipeline {
  /**
   * Members whose token is being checked, with the frames they sent since:
   * those are handled once its answer is out. Nobody else waits.
   */
  readonly #waiting = new Map<string, Array<() => void>>();
  /**
   * Each address's reactions, all its sockets together: a reaction is
   * stored, so many sockets of one address must not multiply the lane. In
   * memory, as the room's other per-address budgets for HTTP are.
   */
  readonly #reactionsByAddress = new Buckets();

  constructor(
    private readonly parts: Pick<
      RoomParts,
      "name" | "config" | "addresses" | "sanctions" | "sequencer" | "roster" | "accounts" | "history" | "reads" | "search"
    > &
      PipelineLinks,
  ) {}

  /**
   * Handles one frame, after its own limit, or its lane's, was taken by the
   * object that holds its socket. Returns the token check it started, if it
   * was a renewal.
   */
  handle(peer: Peer, data: Payload, own: OwnVerdict, lane: Lane | null, addressFrames: Bucket | undefined): Promise<void> | undefined {
    const { entry } = peer;
    const waiting = this.#waiting.get(entry.id);
    if (waiting !== undefined) {
      waiting.push(() => void this.handle(peer, data, own, lane, addressFrames));
      return;
    }
    const { config, addresses, sanctions, sequencer, roster, accounts, broadcast, typing } = this.parts;
    const now = Date.now();
    if (addressFrames !== undefined) addresses.restoreFrames(entry.address, addressFrames);
    // Every frame counts against both limits, refused ones too, and what it cost is kept before anything else can fail.
    // A lane's frame takes from its lane alone, which its socket's holder keeps.
    const shared = lane === null ? addresses.takeFrame(entry.address, now) : null;
    if (shared !== null) peer.keep(shared.copy);
    const reply = (frame: ServerFrame) => {
      broadcast.flush();
      peer.deliver(frame);
    };
    const address =
      lane === "reactions" ? this.#reactionsByAddress.take(entry.address, config.addressShare * config.reactionsPer10s, now) : (shared?.verdict ?? null);
    if (!own.ok || (address !== null && !address.ok)) {
      reply(slowDown(Math.max(own.ok ? 0 : own.retryAfterMs, address === null || address.ok ? 0 : address.retryAfterMs), lane));
      return;
    }
    const max = config.maxFrameBytes;
    if (typeof data === "string" ? exceedsBytes(data, max) : data.binaryBytes > max) {
      reply(errorFrame("too_large", `frames are at most ${max} bytes`));
      return;
    }
    if (typeof data !== "string") {
      reply(errorFrame("unsupported", "binary frames are not supported; send text"));
      return;
    }
    const parsed = parseClientFrame(data, config.maxMessageChars);
    if (!parsed.ok) {
      reply(parsed.error);
      return;
    }
    const frame = parsed.frame;
    // Every answer names the frame it answers, when that had an id.
    const answer = (out: Answer) => reply(frame.id === undefined ? out : { ...out, id: frame.id });
    if (lane !== null && !belongsTo(frame.type, lane)) {
      answer(errorFrame("bad_message", `a frame that starts as a ${lane === "typing" ? "typing" : "reaction"} frame must be one`));
      return;
    }
    const sanction = sanctions.refusal(entry, now, WRITES.has(frame.type));
    if (sanction !== null) {
      const { code, message, until } = sanction;
      answer({ type: "error", code, message, until });
      return;
    }
    switch (frame.type) {
      case "message": {
        typing.stop(entry.id);
        const { text, replyTo, id } = frame;
        const mentions = mentionedIn(text, roster, accounts);
        const published = sequencer.publish({ user: toUser(entry), text, at: now, sender: senderOf(entry), id, replyTo, mentions }, peer);
        answerPublished(published, id, answer);
        break;
      }
      case "edit":
      case "delete":
      case "react":
      case "unreact": {
        const { type: kind, seq: target, id } = frame;
        const actor = { user: toUser(entry), sender: senderOf(entry), moderator: entry.moderator === true };
        const text = kind === "edit" ? frame.text : kind === "delete" ? undefined : frame.emoji;
        const mentions = kind === "edit" ? mentionedIn(frame.text, roster, accounts) : undefined;
        const published = sequencer.change({ kind, target, id, text, mentions }, actor, now, peer);
        answerPublished(published, id, answer);
        break;
      }
      case "thread": {
        const thread = this.parts.history.thread(frame.seq, frame.after ?? 0, config.historyReplayLimit);
        answer(thread === null ? missing(frame.seq, null) : { type: "thread", seq: frame.seq, ...thread });
        break;
      }
      case "rename": {
        if (entry.verified) {
          answer(errorFrame("rename_not_allowed", "your name comes from your token"));
          break;
        }
        const from = entry.name;
        roster.rename(entry.id, frame.name);
        peer.update({ name: frame.name });
        broadcast.record({ kind: "renamed", user: toUser(entry), from });
        answer({ type: "renamed", user: toUser(entry), from });
        break;
      }
      case "who": {
        const page = roster.page(frame.after ?? null, config.presenceListLimit);
        answer({ type: "users", ...page, online: roster.size });
        broadcast.known(entry.id);
        break;
      }
      case "history":
        answer(this.parts.replay({ since: frame.after, epoch: null }));
        break;
      case "batching":
        // The object that holds the socket switches it as it sends this answer, so the switch keeps its place among the frames.
        answer({ type: "batching", on: frame.on });
        break;
      case "token":
        return this.#renew(peer, frame.token, answer);
      case "typing":
        if (frame.stop) typing.stop(entry.id);
        else typing.start(entry.id, now);
        break;
      case "read": {
        const account = accountOf(entry);
        if (account === null) {
          answer(errorFrame("account_required", "read positions need a token or ?client="));
          break;
        }
        const seq = this.parts.reads.advance(account, frame.seq, now);
        if (seq !== null) this.parts.receipts.moved(entry.id, account, seq);
        break;
      }
      case "search": {
        const found = this.parts.search.find(frame.q, frame.before ?? null, SEARCH_RESULTS, entry.address, now);
        if (!("refusal" in found)) answer({ type: "search", ...found });
        else {
          const { code, message, retryAfterMs } = found.refusal;
          answer({ type: "error", code, message, ...(retryAfterMs !== undefined && { retryAfterMs }) });
        }
        break;
      }
      default:
        if (!entry.moderator) answer(errorFrame("forbidden", "only moderators may kick, ban or mute; a moderator's token says role: moderator"));
        else answer(moderate(frame, now, sanctions, roster, { expel: this.parts.expel, hush: (held) => typing.stop(held.id) }));
    }
  }

  /**
   * Renews a socket's token: a valid token for this room that names the
   * same person. The socket then lasts until the new expiry, with the new
   * token's role. The member's frames that arrive meanwhile wait for the
   * answer, and go once it is out.
   */
  async #renew(peer: Peer, token: string, answer: (frame: Answer) => void): Promise<void> {
    const { name, roster, keys } = this.parts;
    const { id } = peer.entry;
    this.#waiting.set(id, []);
    try {
      const check = await verifyToken(keys, token, name, Date.now());
      const entry = roster.get(id);
      // Gone while the token was checked, and what it sent meanwhile with it.
      if (entry === undefined) return;
      const renewed = renewal(check, entry);
      if (renewed.ok) {
        const { exp, moderator } = renewed;
        roster.renew(entry.id, exp, moderator);
        peer.update({ tokenExp: exp, moderator: moderator ? true : undefined });
        answer({ type: "renewed", exp });
      } else {
        answer({ ...errorFrame(renewed.code, renewed.message), ...(renewed.retryAfterMs !== undefined && { retryAfterMs: renewed.retryAfterMs }) });
      }
    } catch (error) {
      log({ event: "error", room: name, handler: "token", message: describe(error) });
      answer(errorFrame("internal", "the room could not check that token"));
    } finally {
      const waiting = this.#waiting.get(id) ?? [];
      this.#waiting.delete(id);
      if (roster.get(id) !== undefined) for (const next of waiting) next();
    }
    await this.parts.afterFrames();
  }
}

/**
 * Answers a published message or change where the broadcast will not: a
 * new one's ack goes out after it, these need no commit and go now.
 */
function answerPublished(published: Published, id: string | undefined, answer: (frame: Answer) => void): void {
  if (!published.ok) answer(refusalOf(published));
  else if (published.duplicate && id !== undefined) answer({ type: "ack", id, seq: published.seq });
}
