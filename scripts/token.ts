// npm run token -- <room> <name> [ttlSeconds]
// Prints a token for a `private-` room, signed with ROOM_SECRET from the
// environment or, failing that, from .dev.vars (the file `wrangler dev` reads).
import { existsSync, readFileSync } from "node:fs";
import { checkDisplayName, isRoomName } from "../src/names.ts";
import { signToken } from "../src/token.ts";

const DEFAULT_TTL_SECONDS = 3600;

function fail(message: string): never {
  process.stderr.write(`${message}\nusage: npm run token -- <room> <name> [ttlSeconds]\n`);
  process.exit(2);
}

function secretFromDevVars(): string | undefined {
  if (!existsSync(".dev.vars")) return undefined;
  for (const line of readFileSync(".dev.vars", "utf8").split(/\r?\n/)) {
    const match = /^\s*ROOM_SECRET\s*=\s*(.*?)\s*$/.exec(line);
    if (match) return match[1]!.replace(/^(["'])(.*)\1$/, "$2");
  }
  return undefined;
}

const [room, rawName, ttl] = process.argv.slice(2);
if (room === undefined || rawName === undefined) fail("a room and a name are required");
if (!isRoomName(room)) fail(`not a room name: ${room}`);
const name = checkDisplayName(rawName);
if (!name.ok) fail(name.message);
const ttlSeconds = ttl === undefined ? DEFAULT_TTL_SECONDS : Number(ttl);
if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds <= 0) fail("ttlSeconds must be a whole number of seconds, 1 or more");
const secret = process.env.ROOM_SECRET || secretFromDevVars();
if (!secret) fail("set ROOM_SECRET in the environment or in .dev.vars");

const exp = Math.floor(Date.now() / 1000) + ttlSeconds;
process.stdout.write(`${await signToken(secret, { room, name: name.name, exp })}\n`);
