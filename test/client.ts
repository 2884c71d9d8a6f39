import { exports } from "cloudflare:workers";
import type { ServerFrame } from "../src/protocol";

/**
 * A test client for a room, from inside the runtime: it keeps every frame it
 * receives and lets a test wait for the next one it expects.
 */
export class Client {
  readonly frames: string[] = [];
  closeEvent: CloseEvent | null = null;
  #read = 0;
  #waiters: Array<() => void> = [];

  private constructor(readonly ws: WebSocket) {
    ws.addEventListener("message", (event) => {
      this.frames.push(typeof event.data === "string" ? event.data : `<binary ${String(event.data)}>`);
      this.#wake();
    });
    ws.addEventListener("close", (event) => {
      this.closeEvent = event;
      this.#wake();
    });
    ws.accept();
  }

  static async connect(path: string): Promise<Client> {
    const response = await exports.default.fetch(`http://chat.test${path}`, { headers: { Upgrade: "websocket" } });
    if (response.webSocket === null) {
      throw new Error(`expected an upgrade, got ${response.status}: ${await response.text()}`);
    }
    return new Client(response.webSocket);
  }

  /**
   * Connects and reads the welcome and, in JSON, the history, so the next
   * frame is whatever follows them. (In text, an empty history sends nothing.)
   */
  static async join(path: string): Promise<Client> {
    const client = await Client.connect(path);
    const welcome = await client.nextText();
    if (welcome.startsWith("{")) await client.next("history");
    return client;
  }

  send(data: string | ArrayBuffer | object): void {
    this.ws.send(typeof data === "string" || data instanceof ArrayBuffer ? data : JSON.stringify(data));
  }

  /** The next unread text frame. */
  async nextText(): Promise<string> {
    await this.#until(() => this.#read < this.frames.length, "a frame");
    return this.frames[this.#read++]!;
  }

  /** The next unread frame, which must be JSON of the given type. */
  async next<T extends ServerFrame["type"]>(type: T): Promise<Extract<ServerFrame, { type: T }>> {
    const text = await this.nextText();
    const frame = JSON.parse(text) as ServerFrame;
    if (frame.type !== type) throw new Error(`expected a ${type} frame, got ${text}`);
    return frame as Extract<ServerFrame, { type: T }>;
  }

  /** Skips unread frames until one of the given type arrives. */
  async skipTo<T extends ServerFrame["type"]>(type: T): Promise<Extract<ServerFrame, { type: T }>> {
    for (;;) {
      const frame = JSON.parse(await this.nextText()) as ServerFrame;
      if (frame.type === type) return frame as Extract<ServerFrame, { type: T }>;
    }
  }

  unread(): string[] {
    return this.frames.slice(this.#read);
  }

  async closed(): Promise<CloseEvent> {
    await this.#until(() => this.closeEvent !== null, "the close");
    return this.closeEvent!;
  }

  close(code = 1000, reason = "bye"): void {
    this.ws.close(code, reason);
  }

  #wake(): void {
    for (const wake of this.#waiters.splice(0)) wake();
  }

  async #until(ready: () => boolean, what: string): Promise<void> {
    const deadline = Date.now() + 5_000;
    while (!ready()) {
      if (this.closeEvent !== null && what !== "the close") {
        throw new Error(`socket closed (${this.closeEvent.code}) while waiting for ${what}; unread: ${this.unread().join(" | ")}`);
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new Error(`timed out waiting for ${what}; unread: ${this.unread().join(" | ")}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, remaining);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }
}

/** A room name no other test in the file uses, since storage is shared per file. */
let rooms = 0;
export function uniqueRoom(label: string): string {
  rooms += 1;
  return `${label}-${rooms}`;
}

/** Waits until the room has handled everything sent so far, by asking it who is online. */
export async function settle(client: Client): Promise<void> {
  client.send({ type: "who" });
  await client.skipTo("users");
}
