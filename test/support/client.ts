import { exports } from "cloudflare:workers";
import type { Caller, Read } from "../../src/room/api";
import type { Identity } from "../../src/auth/token";
import { FrameReader, waitFor } from "./frames";

/** A test client for a room, from inside the runtime, talking to the Worker as a browser would. */
export class Client extends FrameReader {
  closeEvent: CloseEvent | null = null;

  private constructor(readonly ws: WebSocket) {
    super();
    ws.addEventListener("message", (event) => {
      this.frames.push(typeof event.data === "string" ? event.data : `<binary ${String(event.data)}>`);
    });
    ws.addEventListener("close", (event) => {
      this.closeEvent = event;
    });
    ws.accept();
  }

  protected get ended(): boolean {
    return this.closeEvent !== null;
  }

  /**
   * Connects from `address` (`CF-Connecting-IP`), by default one no other
   * client has: people are on their own addresses unless a test says not.
   */
  static async connect(path: string, address = nextAddress()): Promise<Client> {
    return Client.accept(await exports.default.fetch(`http://chat.test${path}`, { headers: { Upgrade: "websocket", "CF-Connecting-IP": address } }));
  }

  /** The client end of an upgrade answered by the Worker or, in a test, by a room directly. */
  static async accept(response: Response): Promise<Client> {
    if (response.webSocket === null) {
      throw new Error(`expected an upgrade, got ${response.status}: ${await response.text()}`);
    }
    return new Client(response.webSocket);
  }

  /**
   * Connects and reads the welcome and, in JSON, the history, so the next
   * frame is whatever follows them. (In text, an empty history sends nothing.)
   */
  static async join(path: string, address?: string): Promise<Client> {
    const client = await Client.connect(path, address);
    const welcome = await client.nextText();
    if (welcome.startsWith("{")) await client.next("history");
    return client;
  }

  send(data: string | ArrayBuffer | object): void {
    this.ws.send(typeof data === "string" || data instanceof ArrayBuffer ? data : JSON.stringify(data));
  }

  async closed(): Promise<CloseEvent> {
    await waitFor(
      () => this.closeEvent !== null,
      () => "the close",
    );
    return this.closeEvent!;
  }

  close(code = 1000, reason = "bye"): void {
    this.ws.close(code, reason);
  }
}

/**
 * A room name no other test uses. Storage is shared by the tests of a file,
 * and by the files that share a runtime (isolate: false in
 * vitest.config.ts), which may each load this module afresh: the count
 * alone could come round again.
 */
const loaded = crypto.randomUUID().slice(0, 8);
let rooms = 0;
export function uniqueRoom(label: string): string {
  rooms += 1;
  return `${label}-${loaded}-${rooms}`;
}

/** A fresh address in the range set aside for benchmarks (198.18.0.0/15). */
let addresses = 0;
export function nextAddress(): string {
  addresses += 1;
  return `198.18.${addresses >> 8}.${addresses & 255}`;
}

/** Someone calling the room's HTTP methods directly, from an address of their own, so that a test's reads share no budget. */
export function caller(identity: Identity | null = null): Caller {
  return { address: nextAddress(), client: null, identity };
}

/** What a read answered; a refusal fails the test with its words. */
export function read<T extends object>(answer: Read<T>): T {
  if ("refusal" in answer) throw new Error(`the room refused the read: ${JSON.stringify(answer.refusal)}`);
  return answer;
}
