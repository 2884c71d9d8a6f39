import type { Refusal } from "../../protocol";

/** Words for the room's error codes; anything else falls back to the room's own message. */
export function explain(error: { code: string; message: string }): string {
  switch (error.code) {
    case "too_long":
    case "too_large":
      return "That message is too long to send.";
    case "empty_message":
      return "Write something first.";
    case "bad_name":
      return `That name can't be used: ${error.message}.`;
    default:
      return `${error.message.charAt(0).toUpperCase()}${error.message.slice(1)}.`;
  }
}

/** Words for why the room would not let this page in. */
export function refusedWords(refusal: Refusal): string {
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
