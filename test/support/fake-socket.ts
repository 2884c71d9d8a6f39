import type { ClientFrame, HistoryFrame, Limits, WelcomeFrame, WireFrame } from "../../src/protocol";

type Sent = ClientFrame & { id?: string };

/**
 * Stands in for the global `WebSocket`: records what the client sends and
 * lets a test play the room, frame by frame, with nothing on the network.
 */
export class FakeSocket extends EventTarget {
  /** Every socket made, oldest first. */
  static made: FakeSocket[] = [];

  static get last(): FakeSocket {
    const socket = FakeSocket.made.at(-1);
    if (socket === undefined) throw new Error("the client opened no socket");
    return socket;
  }

  readonly url: string;
  readonly protocols: string[];
  /** Everything sent, `ping` included, as sent. */
  readonly sent: string[] = [];
  /** How the client closed it, if it did. */
  closedWith: { code?: number; reason?: string } | null = null;
  /** Called with each frame the client sends, after it is recorded: a test's room. */
  onFrame: ((frame: Sent) => void) | null = null;

  constructor(url: string | URL, protocols?: string | string[]) {
    super();
    this.url = String(url);
    this.protocols = protocols === undefined ? [] : typeof protocols === "string" ? [protocols] : protocols;
    FakeSocket.made.push(this);
  }

  send(data: string): void {
    this.sent.push(data);
    if (data !== "ping") this.onFrame?.(JSON.parse(data) as Sent);
  }

  close(code?: number, reason?: string): void {
    this.closedWith ??= { code, reason };
  }

  /** The JSON frames sent so far, heartbeats left out. */
  frames(): Sent[] {
    return this.sent.filter((s) => s !== "ping").map((s) => JSON.parse(s) as Sent);
  }

  /** A message from the room: a frame, a batch of them, or text as it comes. */
  receive(frame: WireFrame | string): void {
    this.dispatchEvent(new MessageEvent("message", { data: typeof frame === "string" ? frame : JSON.stringify(frame) }));
  }

  /** The close event, with this code. */
  end(code: number): void {
    this.dispatchEvent(Object.assign(new Event("close"), { code }));
  }

  /**
   * Welcomes the client, and sends it the history that makes it live: empty
   * unless `messages` or `changes` are given; with `reset`, one that
   * starts the room's history over. The welcome names the client
   * after this socket's place among those made, so that each connection has
   * an id of its own.
   */
  open(options: OpenOptions = {}): void {
    const { lastSeq = 0, epoch = "0123456789abcdef", account, typingSeconds = 6, read = 0, messages = [], changes = [], reset = false } = options;
    const { framesPer10s = 0, frameBytes = 16_384, typingPer10s = 0, reactionsPer10s = 0 } = options;
    const you = { id: String(FakeSocket.made.indexOf(this) + 1), name: "ann", ...(account !== undefined && { account }) };
    const welcome: WelcomeFrame = {
      type: "welcome",
      room: "fake",
      you,
      users: [you],
      more: false,
      online: 1,
      tickSeconds: 30,
      typingSeconds,
      limits: { framesPer10s, frameBytes, messageChars: 2000, typingPer10s, reactionsPer10s },
      lastSeq,
      epoch,
      read,
      at: Date.now(),
    };
    this.receive(welcome);
    this.receive({ type: "history", messages, changes, oldestSeq: messages[0]?.seq ?? 0, lastSeq, gap: false, reset, more: false, epoch });
  }
}

/** What the room says in a welcome and the history after it, where a test needs more than the defaults. */
export type OpenOptions = Partial<Pick<Limits, "framesPer10s" | "frameBytes" | "typingPer10s" | "reactionsPer10s">> &
  Partial<Pick<WelcomeFrame, "lastSeq" | "epoch" | "typingSeconds" | "read">> &
  Partial<Pick<HistoryFrame, "messages" | "changes" | "reset">> & { account?: string };
