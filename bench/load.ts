// The load generator for `npm run bench`: WebSocket clients that send
// tokened messages at a steady rate and record when each one arrives.
import { execSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import WebSocket from "ws";

export type Kind = "room" | "relay";

/** A message's token travels in its text as `~T<id>:<sent at, ms>~`, found without parsing the frame. */
export function tokened(id: number, size: number): string {
  const token = `~T${id}:${performance.now().toFixed(3)}~`;
  const text = token + "x".repeat(Math.max(0, size - token.length));
  return JSON.stringify({ type: "message", text });
}

function readToken(frame: string, from: number): { id: number; sentAt: number; next: number } | null {
  const start = frame.indexOf("~T", from);
  if (start < 0) return null;
  const end = frame.indexOf("~", start + 2);
  const colon = frame.indexOf(":", start);
  return { id: Number(frame.slice(start + 2, colon)), sentAt: Number(frame.slice(colon + 1, end)), next: end + 1 };
}

/** What all clients of one measurement received. */
export class Receipts {
  latencies: number[] = [];
  deliveries = 0;
  duplicates = 0;
  /** When the latest delivery arrived. */
  last = 0;
  /** Messages older than this measurement (ids below `from`): a backlog that ran over from the one before. */
  stale = 0;
  from = 0;

  /** Starts a measurement of the messages from id `from` on. */
  reset(from = 0): void {
    this.latencies = [];
    this.deliveries = 0;
    this.duplicates = 0;
    this.last = 0;
    this.stale = 0;
    this.from = from;
  }
}

const MESSAGE_PREFIX = '{"type":"message","seq":';
/** What the room sends a socket that asked for batches (`?batch=1`) while it is busy. */
const BATCH_PREFIX = '{"type":"batch","frames":[';

export class Client {
  readonly ws: WebSocket;
  /** The newest seq this connection has everything up to: what a resume passes as `since`. */
  lastSeq = 0;
  pongs = 0;
  /** Every other frame received, and its bytes: what the server sent this client. */
  frames = 0;
  bytes = 0;
  #ready: Promise<number>;

  /** The tokens received; one set may serve a person's successive connections. */
  readonly seen: Set<number>;

  constructor(url: string, kind: Kind, receipts: Receipts, seen = new Set<number>()) {
    this.seen = seen;
    const opened = performance.now();
    this.ws = new WebSocket(url, { perMessageDeflate: false });
    this.#ready = new Promise((resolve, reject) => {
      // Every error, not just the first: a server going away (Ctrl-C stops it)
      // can fail a socket twice, and an error with no listener ends the process.
      this.ws.on("error", reject);
      // The room is joined at its welcome; the relay as soon as the socket opens.
      if (kind === "relay") this.ws.once("open", () => resolve(performance.now() - opened));
      this.ws.on("message", (data) => {
        const arrived = performance.now();
        const frame = data.toString();
        if (frame === "pong") {
          this.pongs++;
          return;
        }
        this.frames++;
        this.bytes += frame.length;
        if (kind === "room") {
          const joined = () => resolve(arrived - opened);
          if (frame.startsWith(BATCH_PREFIX)) this.#trackBatch(frame, joined);
          else this.#track(frame, joined);
        }
        // Tokens are searched for in every frame, so a history frame counts each message it
        // carries, and a batch each message in it, received when the batch arrived.
        let from = 0;
        for (;;) {
          const token = readToken(frame, from);
          if (token === null) return;
          from = token.next;
          if (token.id < receipts.from) {
            receipts.stale++;
            continue;
          }
          if (this.seen.has(token.id)) {
            receipts.duplicates++;
            continue;
          }
          this.seen.add(token.id);
          receipts.deliveries++;
          receipts.last = arrived;
          receipts.latencies.push(arrived - token.sentAt);
        }
      });
    });
  }

  /** Resolves with the connect time in ms: to the welcome for the room, to open for the relay. */
  ready(): Promise<number> {
    return this.#ready;
  }

  /** Follows the room's seq, which a resume passes as `since`; the welcome means joined. */
  #track(frame: string, joined: () => void): void {
    if (frame.startsWith(MESSAGE_PREFIX)) {
      this.lastSeq = Number(frame.slice(MESSAGE_PREFIX.length, frame.indexOf(",", MESSAGE_PREFIX.length)));
    } else if (frame.startsWith('{"type":"history"')) {
      // Only once the history is in is everything up to its lastSeq here.
      this.lastSeq = Number(/"lastSeq":(\d+)/.exec(frame)![1]);
    } else if (frame.startsWith('{"type":"welcome"')) {
      joined();
    }
  }

  /**
   * A batch holds the frames the socket would have received one by one, in
   * order. The bench's texts hold no frame syntax, so the frames it follows
   * are found by their openings, without parsing what may be thousands of
   * batches a second on the cores the server shares.
   */
  #trackBatch(frame: string, joined: () => void): void {
    if (frame.includes(`{"type":"welcome"`)) joined();
    // A history's lastSeq and a message's seq only grow along the stream, so the largest is the newest.
    const history = frame.indexOf(`{"type":"history"`);
    if (history >= 0) this.lastSeq = Math.max(this.lastSeq, Number(/"lastSeq":(\d+)/.exec(frame.slice(history))![1]));
    const newest = frame.lastIndexOf(MESSAGE_PREFIX);
    if (newest >= 0) {
      const at = newest + MESSAGE_PREFIX.length;
      this.lastSeq = Math.max(this.lastSeq, Number(frame.slice(at, frame.indexOf(",", at))));
    }
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.ws.readyState === WebSocket.CLOSED) return resolve();
      this.ws.once("close", () => resolve());
      this.ws.close(1000);
    });
  }
}

/**
 * Sends `perSecond` messages spread evenly over `seconds`, round-robin over
 * `senders`, and resolves with how many it sent.
 */
export async function pace(senders: Client[], perSecond: number, seconds: number, size: number, nextId: () => number): Promise<number> {
  const total = Math.round(perSecond * seconds);
  const start = performance.now();
  let sent = 0;
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * perSecond) + 1);
    for (; sent < due; sent++) senders[sent % senders.length]!.ws.send(tokened(nextId(), size));
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  return sent;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const CLOCK_TICKS = Number(execSync("getconf CLK_TCK").toString().trim());

/** CPU seconds used so far and resident memory now, of the workerd processes in a process group. */
export function workerdUsage(group: number): { cpuSeconds: number; rssMb: number } {
  let ticks = 0;
  let rssKb = 0;
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      // The command may hold spaces; the fields after its closing parenthesis are fixed.
      const command = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (command !== "workerd" || Number(fields[2]) !== group) continue;
      ticks += Number(fields[11]) + Number(fields[12]);
      rssKb += Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${entry}/status`, "utf8"))?.[1] ?? 0);
    } catch {
      // The process ended while being read.
    }
  }
  return { cpuSeconds: ticks / CLOCK_TICKS, rssMb: rssKb / 1024 };
}
