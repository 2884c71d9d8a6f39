/**
 * One JSON line per connection event or handler error, never per message, so
 * Workers Logs stay cheap to keep and easy to query.
 */
export type LogEvent =
  | { event: "connect"; room: string; id: string; format: string; online: number }
  | { event: "close"; room: string; id: string; code: number; reason: string; online: number }
  | { event: "error"; room: string | null; handler: string; message: string }
  | { event: "wake"; room: string; handler: string }
  | { event: "fanout"; room: string; messages: number; sockets: number; shards: number };

export function log(entry: LogEvent): void {
  const line = JSON.stringify(entry);
  if (entry.event === "error") console.error(line);
  else console.log(line);
}

export function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
