import { CLOSE, type Refusal } from "../protocol";

/**
 * Closes after which reconnecting cannot help: a moderator removed this
 * person, the room closed a flood, or the token ran out and there is no way
 * to get another.
 */
const FINAL_CLOSES: Partial<Record<number, Refusal>> = {
  [CLOSE.flood]: { status: 429, code: "flooding", message: "the room closed this connection for sending too fast" },
  [CLOSE.kicked]: { status: 403, code: "kicked", message: "a moderator removed you from the room" },
  [CLOSE.expired]: { status: 403, code: "token_expired", message: "your token has expired" },
  [CLOSE.banned]: { status: 403, code: "banned", message: "a moderator banned you from the room" },
};

/** The refusal a close with this code amounts to, when coming back by itself would undo what the room meant. */
export function finalRefusal(code: number): Refusal | undefined {
  return FINAL_CLOSES[code];
}

/** Why a socket that was in ended, in words, when no `closing` frame said. */
export function closeWords(code: number): string {
  switch (code) {
    case CLOSE.timeout:
      return "the room heard nothing from this connection for too long";
    case CLOSE.tryAgain:
      return "the room asked to reconnect";
    default:
      return `the connection dropped (code ${code})`;
  }
}
