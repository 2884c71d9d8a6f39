import { DurableObject } from "cloudflare:workers";

interface Env {
  RELAY: DurableObjectNamespace<Relay>;
  TRACE_WAKEUPS?: string;
}

/**
 * A bare relay: accepts hibernatable sockets and forwards every frame, as
 * is, to every socket `ctx.getWebSockets()` returns. No storage, no
 * envelope, no checks. A heartbeat `ping` is answered in the handler, as a
 * relay without an auto-response would.
 */
export class Relay extends DurableObject<Env> {
  override async fetch(): Promise<Response> {
    this.#trace("fetch");
    const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
    this.ctx.acceptWebSocket(server);
    return new Response(null, { status: 101, webSocket: client });
  }

  override webSocketMessage(ws: WebSocket, data: string | ArrayBuffer): void {
    this.#trace("webSocketMessage");
    if (data === "ping") {
      ws.send("pong");
      return;
    }
    for (const socket of this.ctx.getWebSockets()) {
      try {
        socket.send(data);
      } catch {
        // Closing.
      }
    }
  }

  override webSocketClose(ws: WebSocket, code: number): void {
    this.#trace("webSocketClose");
    try {
      ws.close(code === 1005 || code === 1006 ? 1000 : code);
    } catch {
      // Already closed.
    }
  }

  #trace(handler: string): void {
    if (this.env.TRACE_WAKEUPS === "1") console.log(JSON.stringify({ event: "wake", handler }));
  }
}

export default {
  fetch(request, env) {
    const room = /^\/rooms\/([^/]+)$/.exec(new URL(request.url).pathname)?.[1];
    if (room === undefined || request.headers.get("Upgrade") !== "websocket") return new Response("not found", { status: 404 });
    return env.RELAY.getByName(room).fetch(request);
  },
} satisfies ExportedHandler<Env>;
