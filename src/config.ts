/**
 * Room settings, read from the Worker's `[vars]`. Wrangler passes TOML
 * numbers as numbers and `--var` values as strings, so both are accepted.
 */
export interface Config {
  /** Seconds between ticks pushed to every socket; 0 turns ticks off. Default 30. */
  tickSeconds: number;
  /**
   * Seconds of silence after which a socket that has pinged at least once is
   * closed with 4000; 0 turns the sweep off. Default 60.
   */
  heartbeatTimeoutSeconds: number;
}

export interface ConfigVars {
  TICK_SECONDS?: string | number;
  HEARTBEAT_TIMEOUT_SECONDS?: string | number;
}

export const DEFAULTS: Config = {
  tickSeconds: 30,
  heartbeatTimeoutSeconds: 60,
};

export function readConfig(vars: ConfigVars): Config {
  return {
    tickSeconds: seconds(vars, "TICK_SECONDS", DEFAULTS.tickSeconds),
    heartbeatTimeoutSeconds: seconds(vars, "HEARTBEAT_TIMEOUT_SECONDS", DEFAULTS.heartbeatTimeoutSeconds),
  };
}

// A misspelt setting must not silently fall back to a default that bills
// differently, so anything that is not a whole number of seconds throws.
function seconds(vars: ConfigVars, key: keyof ConfigVars, fallback: number): number {
  const raw = vars[key];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) {
    throw new Error(`${key} must be a whole number of seconds (0 or more), got ${JSON.stringify(raw)}`);
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
