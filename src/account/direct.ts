/**
 * The name of the direct conversation of two accounts: the same whichever
 * of them asks, and, signed with `ROOM_SECRET`, a name nobody without it
 * can work out from the two `sub`s. Without a secret (a server that only
 * checks its identity provider's tokens) anyone who knows both `sub`s can
 * compute the name, but still only those two may enter (see
 * `../room/direct.ts`).
 */
export async function directRoomName(a: string, b: string, secret: string | undefined): Promise<string> {
  const encoder = new TextEncoder();
  const key = await crypto.subtle.importKey("raw", encoder.encode(secret ?? "edge-chat direct conversations"), { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
  ]);
  // JSON, so that no pair of subs can be read as another pair.
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, encoder.encode(JSON.stringify([a, b].sort()))));
  return `dm-${Array.from(mac.subarray(0, 16), (byte) => byte.toString(16).padStart(2, "0")).join("")}`;
}
