import type { Refusal } from "../protocol";

/** A JSON answer; `nosniff` keeps browsers from reading user text in it as anything but JSON. */
export function json(body: unknown, status = 200, headers?: HeadersInit): Response {
  const response = Response.json(body, { status, headers });
  response.headers.set("X-Content-Type-Options", "nosniff");
  return response;
}

/** Every HTTP error the project returns: a status and `{ code, message }`, plus details for some codes. */
export function jsonError(status: number, code: string, message: string, headers?: HeadersInit, details?: object): Response {
  return json({ code, message, ...details }, status, headers);
}

export function refusalResponse({ status, code, message, retryAfterMs, until }: Refusal): Response {
  const details = { ...(retryAfterMs !== undefined && { retryAfterMs }), ...(until !== undefined && { until }) };
  if (retryAfterMs === undefined) return jsonError(status, code, message, undefined, details);
  return jsonError(status, code, message, { "Retry-After": String(Math.ceil(retryAfterMs / 1000)) }, details);
}

/**
 * Reads a request body as text, refusing (with null) one over `maxBytes`
 * without reading more than that, whatever its Content-Length claims.
 */
export async function readText(request: Request, maxBytes: number): Promise<string | null> {
  if (Number(request.headers.get("Content-Length") ?? "0") > maxBytes) return null;
  if (request.body === null) return "";
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = request.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel();
      return null;
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return new TextDecoder().decode(bytes);
}

/** The `ws:` or `wss:` twin of an `http:` or `https:` URL. */
export function webSocketUrl(url: URL): URL {
  const ws = new URL(url);
  ws.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return ws;
}

export function isWebSocketUpgrade(request: Request): boolean {
  return request.headers.get("Upgrade")?.toLowerCase() === "websocket";
}
