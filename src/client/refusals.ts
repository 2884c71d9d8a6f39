import type { ErrorBody, Refusal } from "../protocol";

/**
 * Whether trying again later can help: after too many attempts, a full
 * room, or an identity provider whose keys could not be fetched
 * (`auth_unavailable`), yes; after a bad name or token, a ban, or a server
 * that checks no tokens, no.
 */
export function retryable(refusal: Refusal): boolean {
  return refusal.status === 429 || (refusal.status >= 500 && refusal.code !== "auth_not_configured");
}

/**
 * What the room says it would answer this socket's URL with now, with the
 * same token; or, when nothing stands in the way or it cannot be asked,
 * why the connection failed, in words (`dropped` unless the room could not
 * be reached at all).
 */
export async function whyRefused(url: URL, token: string | undefined, dropped: string): Promise<{ refusal: Refusal } | { reason: string }> {
  const http = new URL(url);
  http.protocol = url.protocol === "wss:" ? "https:" : "http:";
  const headers: Record<string, string> = { Accept: "application/json" };
  if (token !== undefined) headers.Authorization = `Bearer ${token}`;
  let response: Response;
  try {
    response = await fetch(http, { headers });
  } catch (error) {
    const cause = error instanceof Error && error.cause instanceof Error ? `: ${error.cause.message}` : "";
    return { reason: `cannot reach ${http.host}${cause}` };
  }
  if (response.status === 426) {
    await response.body?.cancel();
    return { reason: dropped };
  }
  try {
    const body = (await response.json()) as Partial<ErrorBody>;
    const { code, message, until } = body;
    if (typeof code !== "string" || typeof message !== "string") return { reason: dropped };
    const retryAfterMs = body.retryAfterMs ?? retryAfterHeader(response);
    const refusal: Refusal = {
      status: response.status,
      code,
      message,
      ...(retryAfterMs !== undefined && { retryAfterMs }),
      ...(until !== undefined && { until }),
    };
    return { refusal };
  } catch {
    return { reason: dropped };
  }
}

/** `Retry-After` in seconds, as milliseconds. */
export function retryAfterHeader(response: Response): number | undefined {
  const seconds = Number(response.headers.get("Retry-After") ?? NaN);
  return Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : undefined;
}
