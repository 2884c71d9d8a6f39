import WebSocket from "ws";
import type { ServerFrame } from "../../src/protocol";

/** A real `ws` client that records every frame and the close it ended with. */
export class WsClient {
  readonly frames: string[] = [];
  close: { code: number; reason: string } | null = null;
  #read = 0;

  private constructor(readonly ws: WebSocket) {
    ws.on("message", (data, isBinary) => this.frames.push(isBinary ? "<binary>" : data.toString()));
    ws.on("close", (code, reason) => (this.close = { code, reason: reason.toString() }));
  }

  static async open(url: string): Promise<WsClient> {
    const ws = new WebSocket(url);
    const client = new WsClient(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
      ws.once("unexpected-response", (_, response) => reject(new Error(`upgrade refused: ${response.statusCode}`)));
    });
    return client;
  }

  /** Opens a socket that the server must refuse, and returns the refusal. */
  static async refusal(url: string): Promise<{ status: number; body: string }> {
    const ws = new WebSocket(url);
    return new Promise((resolve, reject) => {
      ws.once("open", () => reject(new Error("the upgrade was accepted")));
      ws.once("error", reject);
      ws.once("unexpected-response", (_, response) => {
        let body = "";
        response.on("data", (chunk: Buffer) => (body += chunk));
        response.on("end", () => resolve({ status: response.statusCode ?? 0, body }));
      });
    });
  }

  send(data: string | object): void {
    this.ws.send(typeof data === "string" ? data : JSON.stringify(data));
  }

  async nextText(): Promise<string> {
    await waitFor(() => this.#read < this.frames.length, () => `a frame (closed: ${JSON.stringify(this.close)})`);
    return this.frames[this.#read++]!;
  }

  async next<T extends ServerFrame["type"]>(type: T): Promise<Extract<ServerFrame, { type: T }>> {
    const text = await this.nextText();
    const frame = JSON.parse(text) as ServerFrame;
    if (frame.type !== type) throw new Error(`expected a ${type} frame, got ${text}`);
    return frame as Extract<ServerFrame, { type: T }>;
  }

  /** Reads frames until one of the given type, which it returns. */
  async skipTo<T extends ServerFrame["type"]>(type: T): Promise<Extract<ServerFrame, { type: T }>> {
    for (;;) {
      const frame = JSON.parse(await this.nextText()) as ServerFrame;
      if (frame.type === type) return frame as Extract<ServerFrame, { type: T }>;
    }
  }

  async closed(): Promise<{ code: number; reason: string }> {
    await waitFor(() => this.close !== null, () => "the close");
    return this.close!;
  }
}

/** Polls until `ready` holds; generous, since a shared 2-core machine can be slow. */
export async function waitFor(ready: () => boolean, what: () => string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ready()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what()}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
