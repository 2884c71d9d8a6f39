import { env, runDurableObjectAlarm } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { describe, expect, it, vi } from "vitest";
import { signToken, type Grant } from "../src/auth/grant";
import worker from "../src/worker/router";
import { KEY_SET_TIMING } from "../src/auth/key-set";
import { IDENTITY_HEADER, keysOf, renewal, verifyToken } from "../src/auth/token";
import type { MessagePage } from "../src/protocol";
import { Client, nextAddress, uniqueRoom } from "./support/client";
import { frozenClock } from "./support/clock";

const SECRET = "runtime-test-secret"; // as set for the runtime tests in vitest.config.ts
const now = () => Math.floor(Date.now() / 1000);
const token = (grant: Partial<Grant> & { room: string }) => signToken(SECRET, { name: "ann", exp: now() + 3600, ...grant });

function upgrade(path: string, headers: Record<string, string> = {}): Promise<Response> {
  return exports.default.fetch(`http://chat.test${path}`, { headers: { Upgrade: "websocket", "CF-Connecting-IP": nextAddress(), ...headers } });
}

/** The Worker with other settings than the tests' own, for what only another configuration shows. */
function workerWith(vars: Partial<typeof env>, path: string, init: RequestInit = { headers: { Upgrade: "websocket" } }): Promise<Response> {
  const request = new Request(`http://chat.test${path}`, init) as Request<unknown, IncomingRequestCfProperties>;
  return worker.fetch(request, { ...env, ...vars });
}

/** A JWT with whatever header and claims a test wants, signed with the test secret unless it says `none`. */
async function forged(header: object, claims: object, signature = ""): Promise<string> {
  const part = (value: object) => btoa(JSON.stringify(value)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  return `${part(header)}.${part(claims)}.${signature}`;
}

describe("tokens (JWT, HS256 with ROOM_SECRET)", () => {
  it("let the holder into a private room under the token's name, verified, with their sub as account", async () => {
    const room = uniqueRoom("private-in");
    const ann = await Client.connect(`/rooms/${room}?token=${await token({ room, sub: "user-17" })}`);
    expect((await ann.next("welcome")).you).toEqual({ id: "1", name: "ann", verified: true, account: "user-17" });
    const same = await Client.connect(`/rooms/${room}?name=ann&token=${await token({ room: "*" })}`);
    expect((await same.next("welcome")).you).toEqual({ id: "2", name: "ann", verified: true });
  });

  it.each([
    ["no token", async () => null, 401, "token_required"],
    ["another secret", () => signToken("guess", { room: "private-x", name: "ann", exp: now() + 60 }), 403, "bad_token"],
    ["another room", () => token({ room: "private-y" }), 403, "bad_token"],
    ["a token expired longer ago than the clock skew allows", () => token({ room: "private-x", exp: now() - 60 }), 403, "token_expired"],
    ["a token not valid yet", () => token({ room: "private-x", nbf: now() + 600 }), 403, "bad_token"],
    ["alg none", () => forged({ alg: "none", typ: "JWT" }, { room: "private-x", name: "ann", exp: now() + 60 }), 403, "bad_token"],
    ["RS256 with no key set configured", () => forged({ alg: "RS256" }, { room: "private-x", name: "ann", exp: now() + 60 }, "c2ln"), 403, "bad_token"],
    [
      "no exp",
      () => new SignJWT({ room: "private-x", name: "ann" }).setProtectedHeader({ alg: "HS256" }).sign(new TextEncoder().encode(SECRET)),
      403,
      "bad_token",
    ],
    [
      "a bad role",
      () =>
        new SignJWT({ room: "private-x", name: "ann", role: "admin" })
          .setProtectedHeader({ alg: "HS256" })
          .setExpirationTime(now() + 60)
          .sign(new TextEncoder().encode(SECRET)),
      403,
      "bad_token",
    ],
    ["garbage", async () => "not.a.token", 403, "bad_token"],
  ])("refuse %s in a private room", async (_, make, status, code) => {
    const value = await make();
    const response = await upgrade(`/rooms/private-x${value === null ? "" : `?token=${value}`}`);
    expect(response.status).toBe(status);
    expect(await response.json()).toMatchObject({ code });
  });

  it("refuse a token under another name, and renames by its holder", async () => {
    const room = uniqueRoom("private-names");
    const value = await token({ room });
    const response = await upgrade(`/rooms/${room}?name=mallory&token=${value}`);
    expect(response.status).toBe(403);
    expect(await response.json()).toMatchObject({ code: "bad_token" });
    const ann = await Client.join(`/rooms/${room}?token=${value}`);
    ann.send({ type: "rename", name: "mallory" });
    expect(await ann.next("error")).toMatchObject({ code: "rename_not_allowed" });
  });

  it("are optional in a public room, where one gives a verified name and a client's own header counts for nothing", async () => {
    const room = uniqueRoom("public");
    const ann = await Client.connect(`/rooms/${room}?token=${await token({ room, sub: "a-1" })}`);
    expect((await ann.next("welcome")).you).toMatchObject({ name: "ann", verified: true, account: "a-1" });
    const bob = await Client.connect(`/rooms/${room}?name=bob`);
    expect((await bob.next("welcome")).you).toEqual({ id: "2", name: "bob" });
    const eve = Client.accept(
      await upgrade(`/rooms/${room}?name=eve`, { [IDENTITY_HEADER]: JSON.stringify({ name: "eve", role: "moderator", exp: now() + 60 }) }),
    );
    expect((await (await eve).next("welcome")).you).toEqual({ id: "3", name: "eve" });
    const bad = await upgrade(`/rooms/${room}?token=${await token({ room: "elsewhere" })}`);
    expect(await bad.json()).toMatchObject({ code: "bad_token" });
  });

  it("scope message ids to the token's sub, whatever client id each connection has, and apart from HTTP posts", async () => {
    const room = uniqueRoom("sub-ids");
    const value = await token({ room, sub: "same-person" });
    const first = await Client.join(`/rooms/${room}?client=laptop&token=${value}`);
    first.send({ type: "message", text: "once", id: "m-1" });
    const seq = (await first.skipTo("ack")).seq;
    const second = await Client.join(`/rooms/${room}?client=phone&token=${value}`);
    second.send({ type: "message", text: "once", id: "m-1" });
    expect(await second.skipTo("ack")).toEqual({ type: "ack", id: "m-1", seq });
    // Over HTTP the same account has a namespace of its own: nothing posted there is a socket's.
    const posted = () =>
      exports.default.fetch(`http://chat.test/api/rooms/${room}/messages?token=${value}`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ name: "ann", text: "once", id: "m-1" }),
      });
    expect(await (await posted()).json()).toEqual({ seq: seq + 1, duplicate: false });
    expect(await (await posted()).json()).toEqual({ seq: seq + 1, duplicate: true });
  });

  it("guard the HTTP API of a private room, and bind a post to the token's name", async () => {
    const room = uniqueRoom("private-api");
    const value = await token({ room, name: "bot" });
    expect((await exports.default.fetch(`http://chat.test/api/rooms/${room}/messages`)).status).toBe(401);
    expect((await exports.default.fetch(`http://chat.test/api/rooms/${room}/messages?token=${value}`)).status).toBe(200);
    const post = (name: string) =>
      exports.default.fetch(`http://chat.test/api/rooms/${room}/messages?token=${value}`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ name, text: "hi" }),
      });
    expect((await post("mallory")).status).toBe(403);
    expect((await post("bot")).status).toBe(201);
  });

  it("give the creator of a room a moderator token for it", async () => {
    const created = (await (await exports.default.fetch("http://chat.test/api/rooms", { method: "POST" })).json()) as { room: string; ownerToken: string };
    const check = await verifyToken({ secret: SECRET }, created.ownerToken, created.room, Date.now());
    expect(check).toMatchObject({ ok: true, identity: { name: "owner", role: "moderator" } });
    if (!check.ok) return;
    expect(check.identity.exp - now()).toBeGreaterThan(29 * 24 * 3600);
    expect(await verifyToken({ secret: SECRET }, created.ownerToken, "another-room", Date.now())).toMatchObject({ ok: false, code: "bad_token" });
  });
});

describe("a server that checks no tokens", () => {
  it("admits nobody to a private room, and no token anywhere: 503 auth_not_configured", async () => {
    const noKeys = { ROOM_SECRET: undefined, AUTH_JWKS_URL: undefined };
    for (const path of ["/rooms/private-closed", "/rooms/private-closed?token=anything", "/api/rooms/private-closed/messages", "/rooms/open?token=anything"]) {
      const response = await workerWith(noKeys, path);
      expect(response.status, path).toBe(503);
      expect(await response.json()).toMatchObject({ code: "auth_not_configured" });
    }
    expect((await workerWith(noKeys, "/rooms/open")).status).toBe(101);
    const created = await workerWith(noKeys, "/api/rooms", { method: "POST" });
    expect(Object.keys(await created.json())).not.toContain("ownerToken");
  });
});

describe("tokens from an identity provider (AUTH_JWKS_URL)", () => {
  it("are checked against its key set, fetched by the Worker; other keys and HS256 without a secret are refused", async () => {
    const jwksUrl = "https://idp.test/.well-known/jwks.json";
    const { publicKey, privateKey } = await generateKeyPair("ES256");
    const jwk = { ...(await exportJWK(publicKey)), kid: "k1", alg: "ES256" };
    const fetches = vi.spyOn(globalThis, "fetch").mockImplementation(async (input) => {
      expect(String(input instanceof Request ? input.url : input)).toBe(jwksUrl);
      return Response.json({ keys: [jwk] });
    });
    const room = uniqueRoom("private-idp");
    const sign = (key: CryptoKey, kid = "k1") =>
      new SignJWT({ room, name: "ann", role: "moderator" })
        .setProtectedHeader({ alg: "ES256", kid })
        .setSubject("idp|42")
        .setExpirationTime(now() + 60)
        .sign(key);
    const vars = { ROOM_SECRET: undefined, AUTH_JWKS_URL: jwksUrl };

    const ok = await workerWith(vars, `/rooms/${room}?token=${await sign(privateKey)}`);
    expect(ok.status).toBe(101);
    const ann = await Client.accept(ok);
    expect((await ann.next("welcome")).you).toMatchObject({ name: "ann", verified: true, account: "idp|42" });
    expect(fetches).toHaveBeenCalled();

    const other = await generateKeyPair("ES256");
    expect(await (await workerWith(vars, `/rooms/${room}?token=${await sign(other.privateKey)}`)).json()).toMatchObject({ code: "bad_token" });
    expect(await (await workerWith(vars, `/rooms/${room}?token=${await token({ room })}`)).json()).toMatchObject({ code: "bad_token" });
  });
});

describe("an outage of the identity provider", () => {
  /** A provider at `jwksUrl`, each test's own, since key sets are kept per URL for the isolate's life; it answers `status`. */
  async function provider(jwksUrl: string) {
    const { publicKey, privateKey } = await generateKeyPair("ES256");
    const jwk = { ...(await exportJWK(publicKey)), kid: "k1", alg: "ES256" };
    const state = { status: 503 };
    const fetches = vi.spyOn(globalThis, "fetch").mockImplementation(async (input) => {
      expect(String(input instanceof Request ? input.url : input)).toBe(jwksUrl);
      return state.status === 200 ? Response.json({ keys: [jwk] }) : new Response("down for maintenance", { status: state.status });
    });
    const sign = (room: string, sub = "idp|7") =>
      new SignJWT({ room, name: "ann" })
        .setProtectedHeader({ alg: "ES256", kid: "k1" })
        .setSubject(sub)
        .setExpirationTime(now() + 600)
        .sign(privateKey);
    return { state, fetches, sign, vars: { ROOM_SECRET: undefined, AUTH_JWKS_URL: jwksUrl } };
  }

  it("before any key came, refuses sockets and the HTTP API with 503 auth_unavailable and Retry-After, not bad_token, until the keys come", async () => {
    const idp = await provider("https://idp-down.test/jwks.json");
    const room = uniqueRoom("private-outage");
    const value = await idp.sign(room);
    const moderation: RequestInit = { method: "POST", headers: { Authorization: `Bearer ${value}` }, body: JSON.stringify({ type: "kick", user: "1" }) };
    for (const [path, init] of [
      [`/rooms/${room}?token=${value}`, undefined],
      [`/api/rooms/${room}/messages?token=${value}`, undefined],
      [`/api/rooms/${room}/moderation`, moderation],
    ] as const) {
      const response = await workerWith(idp.vars, path, init);
      expect(response.status, path).toBe(503);
      const body = (await response.json()) as { code: string; retryAfterMs: number };
      expect(body).toMatchObject({ code: "auth_unavailable", retryAfterMs: expect.any(Number) });
      expect(body.retryAfterMs).toBeGreaterThan(0);
      expect(response.headers.get("Retry-After"), path).toBe(String(Math.ceil(body.retryAfterMs / 1000)));
    }
    // The later requests came within the retry delay: they did not ask the provider again.
    expect(idp.fetches).toHaveBeenCalledTimes(1);

    idp.state.status = 200;
    frozenClock().advance(KEY_SET_TIMING.retryMs);
    expect((await workerWith(idp.vars, `/rooms/${room}?token=${value}`)).status).toBe(101);
  });

  it("makes a renewal's answer auth_unavailable with when to retry, not bad_token", async () => {
    const idp = await provider("https://idp-renewal.test/jwks.json");
    const room = uniqueRoom("renew-outage");
    const check = await verifyToken(keysOf(idp.vars), await idp.sign(room, "a"), room, Date.now());
    expect(check).toMatchObject({ ok: false, status: 503, code: "auth_unavailable" });
    expect(renewal(check, { verified: true, sub: "a", name: "ann" })).toEqual({
      ok: false,
      code: "auth_unavailable",
      message: expect.any(String),
      retryAfterMs: KEY_SET_TIMING.retryMs,
    });
  });
});

describe("clock skew between a token's signer and this server", () => {
  const signed = (claims: { nbf?: number; iat?: number; exp: number }, room = "private-skew") =>
    new SignJWT({ room, name: "ann", ...claims }).setProtectedHeader({ alg: "HS256" }).sign(new TextEncoder().encode(SECRET));

  it("is forgiven up to AUTH_CLOCK_SKEW_SECONDS (30 by default) on nbf, iat and exp", async () => {
    const room = uniqueRoom("private-skew");
    const ahead = await signed({ nbf: now() + 2, iat: now() + 2, exp: now() + 600 }, room);
    const ann = await Client.connect(`/rooms/${room}?token=${ahead}`);
    expect((await ann.next("welcome")).you).toMatchObject({ name: "ann", verified: true });

    const check = (token: string) => verifyToken(keysOf(env), token, "private-skew", Date.now());
    expect(await check(await signed({ exp: now() - 20 }))).toMatchObject({ ok: true });
    expect(await check(await signed({ nbf: now() + 60, exp: now() + 600 }))).toMatchObject({
      ok: false,
      code: "bad_token",
      message: "the token is not valid yet",
    });
    expect(await check(await signed({ exp: now() - 60 }))).toMatchObject({ ok: false, code: "token_expired" });
  });

  it("is not forgiven at all with AUTH_CLOCK_SKEW_SECONDS = 0", async () => {
    const ahead = await signed({ nbf: now() + 2, exp: now() + 600 });
    const response = await workerWith({ AUTH_CLOCK_SKEW_SECONDS: "0" }, `/rooms/private-skew?token=${ahead}`);
    expect(response.status).toBe(403);
    expect(await response.json()).toMatchObject({ code: "bad_token", message: "the token is not valid yet" });
  });
});

describe("a token's expiry", () => {
  it("ends its socket: the alarm closes it with 4002, and everyone hears the leave as expired", async () => {
    const room = uniqueRoom("expiry");
    const bob = await Client.join(`/rooms/${room}?name=bob`);
    const ann = await Client.join(`/rooms/${room}?token=${await token({ room, exp: now() + 120 })}`);
    await bob.presence({ joined: 1 });
    bob.send("still here");
    ann.send("me too");
    await bob.skipTo("message");
    const clock = frozenClock();
    clock.advance(151_000); // past the token's exp and the 30-s clock skew allowed
    expect(await runDurableObjectAlarm(env.ROOMS.getByName(room))).toBe(true);
    expect((await ann.closed()).code).toBe(4002);
    expect(await bob.skipTo("presence")).toMatchObject({ left: [{ user: { name: "ann" }, reason: "expired" }] });
  });

  it("lasts as long as its token would be taken: through the clock skew allowed past exp, not beyond", async () => {
    const room = uniqueRoom("expiry-skew");
    const ann = await Client.join(`/rooms/${room}?token=${await token({ room, exp: now() + 10 })}`);
    ann.send("here");
    await ann.skipTo("message");
    const clock = frozenClock();
    clock.advance(35_000); // 25 s past exp: a token that old is still taken with AUTH_CLOCK_SKEW_SECONDS at 30
    expect(await runDurableObjectAlarm(env.ROOMS.getByName(room))).toBe(true);
    ann.send("still here");
    expect(await ann.skipTo("message")).toMatchObject({ text: "still here" });
    clock.advance(10_000);
    expect(await runDurableObjectAlarm(env.ROOMS.getByName(room))).toBe(true);
    expect((await ann.closed()).code).toBe(4002);
  });

  it("can be pushed back by renewing with a new token for the same person; another person's is refused", async () => {
    const room = uniqueRoom("renew");
    const ann = await Client.join(`/rooms/${room}?token=${await token({ room, sub: "a", exp: now() + 120 })}`);
    ann.send({ type: "token", token: await token({ room, sub: "someone-else", exp: now() + 3600 }) });
    expect(await ann.next("error")).toMatchObject({ code: "bad_token" });
    ann.send({ type: "token", token: await token({ room, sub: "a", exp: now() - 60 }) });
    expect(await ann.next("error")).toMatchObject({ code: "token_expired" });
    const exp = now() + 3600;
    ann.send({ type: "token", token: await token({ room, sub: "a", exp }) });
    expect(await ann.next("renewed")).toEqual({ type: "renewed", exp });

    const clock = frozenClock();
    clock.advance(151_000); // past the first token's exp and the 30-s clock skew allowed
    ann.send("after the first token's expiry");
    expect(await ann.next("message")).toMatchObject({ text: "after the first token's expiry" });
    expect(await runDurableObjectAlarm(env.ROOMS.getByName(room))).toBe(true);
    ann.send("still here");
    expect(await ann.skipTo("message")).toMatchObject({ text: "still here" });
    expect(ann.closeEvent).toBeNull();
  });
});

describe("a token's account on what its holder writes", () => {
  it("is on each message and edit, live, in history and over HTTP, so that another device of the same account knows its own", async () => {
    const room = uniqueRoom("authored");
    const token = await signToken("runtime-test-secret", { room, name: "ann", sub: "acct-author", exp: Math.floor(Date.now() / 1000) + 3600 });
    const ann = await Client.join(`/rooms/${room}?token=${token}`);
    const bob = await Client.join(`/rooms/${room}?name=bob`);
    ann.send({ type: "message", text: "from my phone", id: "m1" });
    const author = { id: "1", name: "ann", verified: true, account: "acct-author" };
    expect((await bob.skipTo("message")).user).toEqual(author);
    ann.send({ type: "edit", seq: 1, text: "from my laptop" });
    expect((await bob.skipTo("edit")).user).toEqual(author);
    bob.send("anonymous words");
    await ann.skipTo("edit");
    expect((await ann.skipTo("message")).user).toEqual({ id: "2", name: "bob" });
    const page = await (await exports.default.fetch(`http://chat.test/api/rooms/${room}/messages`)).json<MessagePage>();
    expect(page.messages.map((m) => m.user)).toEqual([author, { id: "2", name: "bob" }]);
  });
});
