import type { ChangeKind, Kept } from "./history";
import { errorFrame, type ErrorFrame } from "../protocol";

/** The user that messages posted over HTTP appear from. */
export const HTTP_USER_ID = "http";

/** Why message `seq` cannot be changed, answered or reacted to: it is not kept, or it was deleted. */
export function missing(seq: number, kept: Kept | null): ErrorFrame {
  return errorFrame("unknown_message", kept === null ? `message #${seq} is not in the room's history` : `message #${seq} was deleted`);
}

/** Who asks to change a message: their sender scope, as their messages' ids are, and whether they moderate the room. */
export interface Actor {
  sender: string;
  moderator: boolean;
}

/**
 * Why `actor` may not edit, delete or react to message `seq`, or null if they may.
 * Messages posted over HTTP have senders of their own, which no socket
 * shares, and none of them may be edited.
 * An author is whoever sends under the message's sender scope: the same
 * token `sub`, else the same `?client=` id, else the same connection. A
 * moderator may delete any message, and edit none but their own: words put
 * in someone's mouth would still carry their name.
 */
export function changeRefusal(kind: ChangeKind, seq: number, kept: Kept | null, actor: Actor): ErrorFrame | null {
  if (kept === null || kept.deleted) return missing(seq, kept);
  // Anyone in the room may react to any message.
  if (kind === "react" || kind === "unreact") return null;
  // Posted over HTTP, where nothing proves who is posting again.
  if (kind === "edit" && kept.user.id === HTTP_USER_ID) return errorFrame("forbidden", "messages posted over HTTP cannot be edited");
  if (kept.sender === actor.sender) return null;
  if (kind === "delete" && actor.moderator) return null;
  return errorFrame("forbidden", kind === "edit" ? "only its author may edit a message" : "only its author or a moderator may delete a message");
}
