import { afterEach, inject } from "vitest";
import WebSocket from "ws";
import { FrameReader, waitFor } from "../frames";

/** A real `ws` client that records every frame and the close it ended with. */
export class WsClient extends FrameReader {
  close: { code: number; reason: string } | null = null;

  private constructor(readonly ws: WebSocket) {
    super();
    ws.on("message", (data, isBinary) => this.frames.push(isBinary ? "<binary>" : data.toString()));
    ws.on("close", (code, reason) => (this.close = { code, reason: reason.toString() }));
  }

  protected get ended(): boolean {
    return this.close !== null;
  }

  static async open(url: string, origin?: string): Promise<WsClient> {
    const ws = new WebSocket(url, { origin });
    const client = new WsClient(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
      ws.once("unexpected-response", (_, response) => reject(new Error(`upgrade refused: ${response.statusCode}`)));
    });
    return client;
  }

  /** Opens a socket that the server must refuse, and returns the refusal. */
  static async refusal(url: string, origin?: string): Promise<{ status: number; body: string }> {
    const ws = new WebSocket(url, { origin });
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

  async closed(): Promise<{ code: number; reason: string }> {
    await waitFor(
      () => this.close !== null,
      () => "the close",
    );
    return this.close!;
  }
}

/** `ws://127.0.0.1:<port>` of the `wrangler dev` that the global setup started. */
export const wsBase = inject("devUrl").replace(/^http/, "ws");

const opened: WsClient[] = [];

/** Opens a client on a path of the dev server; it is dropped after the test. */
export async function connect(path: string, origin?: string): Promise<WsClient> {
  const client = await WsClient.open(`${wsBase}${path}`, origin);
  opened.push(client);
  return client;
}

afterEach(() => {
  for (const client of opened.splice(0)) client.ws.terminate();
});
