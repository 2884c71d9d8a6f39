/** Why a request failed: the room's error code and words, and for `auth_unavailable` when to retry. */
export class ChatError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = "ChatError";
  }
}
