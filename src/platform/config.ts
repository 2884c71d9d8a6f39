/**
 * Room settings, read from the Worker's `[vars]`. Wrangler passes TOML
 * numbers as numbers and `--var` values as strings, so both are accepted.
 */
export interface Config {
  /** Seconds between ticks pushed to every socket; 0 turns ticks off. Default 30. */
  tickSeconds: number;
  /**
   * Seconds of silence after which a socket is closed with 4000: one that has
   * pinged at least once, or one that has sent nothing at all since it
   * joined; 0 turns the sweep off. Default 60.
   */
  heartbeatTimeoutSeconds: number;
  /** Messages a fresh join receives in its `history` frame. Default 50. */
  historyOnJoin: number;
  /** Messages one `history` frame carries at most; it says `more` when others follow. At least 1. Default 200. */
  historyReplayLimit: number;
  /** Messages the room keeps; each insert trims the oldest beyond it. At least 1. Default 1000. */
  historyLimit: number;
  /** Characters (code points) a message's text may have after trimming. Default 2000. */
  maxMessageChars: number;
  /** Bytes a WebSocket frame or HTTP body may have; larger ones are refused unread. Default 16 KiB. */
  maxFrameBytes: number;
  /** Frames a socket (or HTTP posts an address) may send per 10 s, and the burst; 0 turns limiting off. Default 20. */
  rateLimitPer10s: number;
  /**
   * `typing` frames a socket may send per 10 s, and `react`/`unreact` frames:
   * budgets of their own beside `rateLimitPer10s`, so that neither can
   * starve messages. Fixed at 10 and 20, and off with it when it is 0.
   */
  typingPer10s: number;
  reactionsPer10s: number;
  /** Seconds someone stays in the typing set without renewing it. At least 1. Default 6. */
  typingSeconds: number;
  /** Sockets a room accepts, on all its objects together; one more is refused with 503. Default 32,000. */
  maxConnectionsPerRoom: number;
  /**
   * Sockets one Durable Object holds: the room takes this many itself, and
   * places the rest on shard objects of this many each. At least 1. Default 1000.
   */
  shardSize: number;
  /** Sockets one address may hold open in a room; one more is refused with 429. Default 50. */
  maxConnectionsPerAddress: number;
  /** Connection attempts one address may make to a room per minute, and the burst; 0 turns it off. Default 30. */
  connectsPerMinute: number;
  /**
   * How many sockets' worth of frames all sockets of one address may send
   * together: `addressShare` × `rateLimitPer10s` per 10 s. Default 3.
   */
  addressShare: number;
  /**
   * Milliseconds that joins, leaves and renames gather for before they go
   * out together in one `presence` frame; longer in rooms of more than 50
   * people (see `presenceWindowMs`). 0 sends each handler's events as soon
   * as it is done. Default 50.
   */
  presenceBatchMs: number;
  /**
   * Milliseconds a busy object gathers frames for before it sends each
   * socket that asked for batches (`?batch=1`) one `batch` frame with all of
   * them. 0 never batches. Default 20.
   */
  batchMs: number;
  /**
   * Frames per second that one object (a room, or a shard) must send to
   * everyone before it batches; below it every frame leaves at once. 0
   * batches whenever a socket asked for it. Default 100: from there on a
   * window holds two frames or more.
   */
  batchAbove: number;
  /** How long the moderator token that `POST /api/rooms` gives a room's creator lasts, in seconds. Default 30 days. */
  ownerTokenSeconds: number;
  /**
   * Seconds a token's `nbf`, `iat` and `exp` may be off this server's clock,
   * for an identity provider whose clock runs ahead or behind. A socket's
   * expiry should allow the same. Default 30.
   */
  authClockSkewSeconds: number;
  /** Users a welcome or a `users` page lists at most. At least 1. Default 200. */
  presenceListLimit: number;
  /** Above this many people in the room, presence frames carry only the count, not who. Default 500. */
  announceLimit: number;
  /**
   * Logs a line each time the room runs a handler, so that `npm run bench`
   * can count wake-ups. For local measurement only; off by default.
   */
  traceWakeups: boolean;
}

export interface ConfigVars {
  TICK_SECONDS?: string | number;
  HEARTBEAT_TIMEOUT_SECONDS?: string | number;
  HISTORY_ON_JOIN?: string | number;
  HISTORY_LIMIT?: string | number;
  MAX_MESSAGE_CHARS?: string | number;
  MAX_FRAME_BYTES?: string | number;
  RATE_LIMIT_PER_10S?: string | number;
  MAX_CONNECTIONS_PER_ROOM?: string | number;
  SHARD_SIZE?: string | number;
  HISTORY_REPLAY_LIMIT?: string | number;
  MAX_CONNECTIONS_PER_ADDRESS?: string | number;
  CONNECTS_PER_MINUTE?: string | number;
  ADDRESS_SHARE?: string | number;
  PRESENCE_BATCH_MS?: string | number;
  BATCH_MS?: string | number;
  BATCH_ABOVE?: string | number;
  PRESENCE_LIST_LIMIT?: string | number;
  OWNER_TOKEN_SECONDS?: string | number;
  AUTH_CLOCK_SKEW_SECONDS?: string | number;
  ANNOUNCE_LIMIT?: string | number;
  TYPING_SECONDS?: string | number;
  TRACE_WAKEUPS?: string;
}

export const DEFAULTS: Config = {
  tickSeconds: 30,
  heartbeatTimeoutSeconds: 60,
  historyOnJoin: 50,
  historyReplayLimit: 200,
  historyLimit: 1000,
  maxMessageChars: 2000,
  maxFrameBytes: 16 * 1024,
  rateLimitPer10s: 20,
  typingPer10s: 10,
  reactionsPer10s: 20,
  typingSeconds: 6,
  maxConnectionsPerRoom: 32_000,
  shardSize: 1000,
  maxConnectionsPerAddress: 50,
  connectsPerMinute: 30,
  addressShare: 3,
  presenceBatchMs: 50,
  batchMs: 20,
  batchAbove: 100,
  ownerTokenSeconds: 30 * 24 * 3600,
  authClockSkewSeconds: 30,
  presenceListLimit: 200,
  announceLimit: 500,
  traceWakeups: false,
};

export function readConfig(vars: ConfigVars): Config {
  const rateLimitPer10s = whole(vars, "RATE_LIMIT_PER_10S", DEFAULTS.rateLimitPer10s, 0);
  return {
    tickSeconds: whole(vars, "TICK_SECONDS", DEFAULTS.tickSeconds, 0),
    heartbeatTimeoutSeconds: whole(vars, "HEARTBEAT_TIMEOUT_SECONDS", DEFAULTS.heartbeatTimeoutSeconds, 0),
    historyOnJoin: whole(vars, "HISTORY_ON_JOIN", DEFAULTS.historyOnJoin, 0),
    historyReplayLimit: whole(vars, "HISTORY_REPLAY_LIMIT", DEFAULTS.historyReplayLimit, 1),
    // The newest message is never trimmed: its seq is where the next one counts from.
    historyLimit: whole(vars, "HISTORY_LIMIT", DEFAULTS.historyLimit, 1),
    maxMessageChars: whole(vars, "MAX_MESSAGE_CHARS", DEFAULTS.maxMessageChars, 1),
    maxFrameBytes: whole(vars, "MAX_FRAME_BYTES", DEFAULTS.maxFrameBytes, 1),
    rateLimitPer10s,
    // Lifting the limit for a test or a benchmark lifts these with it.
    typingPer10s: rateLimitPer10s === 0 ? 0 : DEFAULTS.typingPer10s,
    reactionsPer10s: rateLimitPer10s === 0 ? 0 : DEFAULTS.reactionsPer10s,
    typingSeconds: whole(vars, "TYPING_SECONDS", DEFAULTS.typingSeconds, 1),
    maxConnectionsPerRoom: whole(vars, "MAX_CONNECTIONS_PER_ROOM", DEFAULTS.maxConnectionsPerRoom, 1),
    shardSize: whole(vars, "SHARD_SIZE", DEFAULTS.shardSize, 1),
    maxConnectionsPerAddress: whole(vars, "MAX_CONNECTIONS_PER_ADDRESS", DEFAULTS.maxConnectionsPerAddress, 1),
    connectsPerMinute: whole(vars, "CONNECTS_PER_MINUTE", DEFAULTS.connectsPerMinute, 0),
    addressShare: whole(vars, "ADDRESS_SHARE", DEFAULTS.addressShare, 1),
    presenceBatchMs: whole(vars, "PRESENCE_BATCH_MS", DEFAULTS.presenceBatchMs, 0),
    batchMs: whole(vars, "BATCH_MS", DEFAULTS.batchMs, 0),
    batchAbove: whole(vars, "BATCH_ABOVE", DEFAULTS.batchAbove, 0),
    ownerTokenSeconds: whole(vars, "OWNER_TOKEN_SECONDS", DEFAULTS.ownerTokenSeconds, 1),
    authClockSkewSeconds: whole(vars, "AUTH_CLOCK_SKEW_SECONDS", DEFAULTS.authClockSkewSeconds, 0),
    presenceListLimit: whole(vars, "PRESENCE_LIST_LIMIT", DEFAULTS.presenceListLimit, 1),
    announceLimit: whole(vars, "ANNOUNCE_LIMIT", DEFAULTS.announceLimit, 0),
    traceWakeups: vars.TRACE_WAKEUPS === "1",
  };
}

// A misspelt setting must not silently fall back to a default that bills
// differently, so anything that is not a whole number in range throws.
function whole(vars: ConfigVars, key: keyof ConfigVars, fallback: number, min: number): number {
  const raw = vars[key];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < min) {
    throw new Error(`${key} must be a whole number of at least ${min}, got ${JSON.stringify(raw)}`);
  }
  return value;
}

/**
 * How often the alarm runs while sockets are connected. Each run ticks and
 * sweeps, so with ticks on the sweep rides along at the tick period; with
 * ticks off it runs once per heartbeat timeout; with both off, never.
 */
export function alarmPeriodMs(config: Config): number | null {
  const seconds = config.tickSeconds || config.heartbeatTimeoutSeconds;
  return seconds > 0 ? seconds * 1000 : null;
}
