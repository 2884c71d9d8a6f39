// The protocol's fixed sizes: how much a frame may hold, and how much of something it shows.

/** The longest ban or mute: a year. */
export const MAX_SANCTION_SECONDS = 365 * 24 * 3600;

/** Characters of the message it answers that a reply carries. */
export const REPLY_EXCERPT_CHARS = 100;
/** Distinct emoji one message may have reactions with. */
export const MAX_EMOJI_PER_MESSAGE = 20;
/** Ids a reaction summary lists per emoji. */
export const REACTION_USERS_SHOWN = 5;
/** People a typing frame names. */
export const TYPING_USERS_SHOWN = 5;
/** Characters a search query may have. */
export const MAX_QUERY_CHARS = 200;
/** Results a search frame carries at most, and an HTTP search without `limit`. */
export const SEARCH_RESULTS = 20;
/** People one message may mention. */
export const MAX_MENTIONS = 20;

/** The longest a client's own id for a message or request may be. */
export const MAX_MESSAGE_ID_CHARS = 64;
