import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { describe, expect, inject, it } from "vitest";
import { signToken } from "../../src/auth/grant";
import { E2E_ROOM_SECRET } from "../support/e2e/wrangler-dev";
import { connect, WsClient, wsBase } from "../support/e2e/ws-client";

const httpBase = inject("devUrl");

describe("abuse, against wrangler dev", () => {
  it("refuses a browser upgrade from another origin, and lets the server's own in", async () => {
    const refused = await WsClient.refusal(`${wsBase}/rooms/e2e-origin`, "https://evil.example");
    expect(refused.status).toBe(403);
    expect(JSON.parse(refused.body)).toMatchObject({ code: "bad_origin" });
    const own = await connect("/rooms/e2e-origin?name=ann", httpBase);
    expect(await own.next("welcome")).toMatchObject({ you: { name: "ann" } });
  });

  it("lets into a private- room only with a token from `npm run token`", async () => {
    const { stdout } = await promisify(execFile)("npm", ["run", "-s", "token", "--", "private-e2e", "ann", "60", "--role", "moderator", "--sub", "e2e-ann"], {
      env: { ...process.env, ROOM_SECRET: E2E_ROOM_SECRET },
    });
    const token = stdout.trim();
    // A JWT: header, claims and signature.
    expect(token).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString())).toMatchObject({
      room: "private-e2e",
      name: "ann",
      role: "moderator",
      sub: "e2e-ann",
    });

    const refused = await WsClient.refusal(`${wsBase}/rooms/private-e2e?name=ann`);
    expect(refused.status).toBe(401);
    expect(JSON.parse(refused.body)).toMatchObject({ code: "token_required" });
    const ann = await connect(`/rooms/private-e2e?token=${token}`);
    expect(await ann.next("welcome")).toMatchObject({ room: "private-e2e", you: { name: "ann", verified: true, account: "e2e-ann" } });
  });

  it("lets a moderator from `npm run token --role moderator` kick and ban, and a banned token stays out", async () => {
    const mint = async (name: string, ...flags: string[]) =>
      (
        await promisify(execFile)("npm", ["run", "-s", "token", "--", "e2e-moderated", name, "600", ...flags], {
          env: { ...process.env, ROOM_SECRET: E2E_ROOM_SECRET },
        })
      ).stdout.trim();
    const mod = await connect(`/rooms/e2e-moderated?token=${await mint("mod", "--role", "moderator")}`);
    await mod.next("welcome");
    const bob = await connect("/rooms/e2e-moderated?name=bob");
    const bobId = (await bob.next("welcome")).you.id;
    const eveToken = await mint("eve", "--sub", "e2e-eve");
    const eve = await connect(`/rooms/e2e-moderated?token=${eveToken}&client=first`);
    const eveId = (await eve.next("welcome")).you.id;
    // Through wrangler dev, a socket closed by the server before it ever sent a frame sees its
    // close event only about ten seconds later; one that has spoken sees it at once.
    eve.send("hello");
    await eve.skipTo("message");

    bob.send({ type: "kick", user: eveId });
    expect(await bob.skipTo("error")).toMatchObject({ code: "forbidden" });
    mod.send({ type: "kick", user: bobId });
    expect(await mod.skipTo("moderated")).toMatchObject({ action: "kick", user: { name: "bob" } });
    expect((await bob.closed()).code).toBe(4001);
    mod.send({ type: "ban", user: eveId, seconds: 600 });
    expect(await mod.skipTo("moderated")).toMatchObject({ action: "ban", user: { name: "eve", account: "e2e-eve" } });
    expect((await eve.closed()).code).toBe(4003);
    const refused = await WsClient.refusal(`${wsBase}/rooms/e2e-moderated?token=${eveToken}&client=second`);
    expect(refused.status).toBe(403);
    expect(JSON.parse(refused.body)).toMatchObject({ code: "banned" });
  });

  it("lets an author edit and a moderator delete over HTTP, seen live and by a client that resumes", async () => {
    const room = "e2e-changes";
    const ann = await connect(`/rooms/${room}?name=ann&client=e2e-ann-changes`);
    let bob = await connect(`/rooms/${room}?name=bob&client=e2e-bob-changes`);
    await ann.next("welcome");
    await bob.next("welcome");
    ann.send({ type: "message", text: "helo", id: "m1" });
    const seq = (await ann.skipTo("ack")).seq;
    expect(await bob.skipTo("message")).toMatchObject({ seq, text: "helo" });
    bob.ws.close();
    await bob.closed();

    ann.send({ type: "edit", seq, text: "hello" });
    expect(await ann.skipTo("edit")).toMatchObject({ seq, text: "hello" });
    ann.send({ type: "message", text: "spam", id: "m2" });
    const spam = (await ann.skipTo("ack")).seq;
    const moderator = await signToken(E2E_ROOM_SECRET, { room, name: "mod", role: "moderator", exp: Math.floor(Date.now() / 1000) + 600 });
    const response = await fetch(`${httpBase}/api/rooms/${room}/moderation`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${moderator}` },
      body: JSON.stringify({ type: "delete", seq: spam }),
    });
    const answer = await response.json();
    expect(response.status, JSON.stringify(answer)).toBe(200);
    expect(await ann.skipTo("delete")).toEqual(answer);

    bob = await connect(`/rooms/${room}?name=bob&client=e2e-bob-changes&since=${seq}`);
    await bob.next("welcome");
    const history = await bob.next("history");
    expect(history.changes).toMatchObject([{ type: "edit", seq, text: "hello" }]);
    expect(history.messages).toMatchObject([{ seq: spam, text: "", deletedAt: expect.any(Number) }]);
  });

  it("creates an unguessable room whose wsUrl works", async () => {
    const response = await fetch(`${httpBase}/api/rooms`, { method: "POST" });
    expect(response.status).toBe(201);
    const { room, wsUrl } = (await response.json()) as { room: string; wsUrl: string };
    expect(room).toMatch(/^[0-9a-f]{32}$/);
    const ann = await WsClient.open(`${wsUrl}?name=ann`);
    expect(await ann.next("welcome")).toMatchObject({ room });
    ann.ws.terminate();
  });

  it("refuses an oversized frame and keeps the socket, then closes a flooder with 1008 while others talk", async () => {
    const flooder = await connect("/rooms/e2e-flood?name=flooder");
    const ann = await connect("/rooms/e2e-flood?name=ann");
    await flooder.skipTo("history");
    await ann.skipTo("history");

    flooder.send("x".repeat(20_000));
    expect(await flooder.skipTo("error")).toMatchObject({ code: "too_large" });

    for (let i = 0; i < 200; i++) flooder.send(`spam ${i}`);
    expect((await flooder.closed()).code).toBe(1008);
    expect(flooder.frames.some((f) => f.includes('"rate_limited"'))).toBe(true);

    ann.send("still talking");
    expect(await ann.skipTo("presence")).toMatchObject({ left: [{ user: { name: "flooder" }, reason: "flood" }] });
    while ((await ann.skipTo("message")).text !== "still talking");
  });
});
