import type { Config } from "../platform/config";
import type { HistoryFrame, Limits, ServerFrame, WelcomeFrame } from "../protocol";
import type { Member } from "../sockets/socket-set";
import type { RoomParts } from "./parts";
import { accountOf, toUser } from "./roster";

/**
 * What a newcomer is sent before anything else, in this order: the
 * welcome (who they are, who is here, where the room's stream stands and
 * what they may send), the history from where they asked, and what is
 * going on now (who is typing, who has read what) where there is any.
 */
export function welcomeOf(
  parts: Pick<RoomParts, "config" | "roster" | "history" | "store" | "reads">,
  room: string,
  member: Member,
  now: number,
  history: HistoryFrame,
  ongoing: Array<ServerFrame | null>,
): ServerFrame[] {
  const { config, roster, store, reads } = parts;
  const { users, more } = roster.page(null, config.presenceListLimit);
  const account = accountOf(member);
  const welcome: WelcomeFrame = {
    type: "welcome",
    room,
    you: toUser(member),
    users,
    more,
    online: roster.size,
    tickSeconds: config.tickSeconds,
    typingSeconds: config.typingSeconds,
    limits: limitsOf(config),
    lastSeq: parts.history.lastSeq,
    epoch: store.epoch!,
    read: account === null ? 0 : reads.of(account),
    at: now,
  };
  return [welcome, history, ...ongoing.filter((frame) => frame !== null)];
}

/** What the welcome tells a client it may send, so that it can pace itself. */
function limitsOf(config: Config): Limits {
  const { rateLimitPer10s, maxFrameBytes, maxMessageChars, typingPer10s, reactionsPer10s } = config;
  return { framesPer10s: rateLimitPer10s, frameBytes: maxFrameBytes, messageChars: maxMessageChars, typingPer10s, reactionsPer10s };
}
