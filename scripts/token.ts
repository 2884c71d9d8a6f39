// npm run token -- <room> <name> [seconds] [--role moderator] [--sub id]
// Prints a JWT (HS256) for a room, or `*` for every room, signed with
// ROOM_SECRET from the environment or, failing that, from .dev.vars (the
// file `wrangler dev` reads).
import { existsSync, readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { checkDisplayName, isRoomName } from "../src/protocol/names.ts";
import { signToken } from "../src/auth/grant.ts";

const DEFAULT_TTL_SECONDS = 3600;
const USAGE = "usage: npm run token -- <room or *> <name> [seconds] [--role member|moderator] [--sub id]";

function fail(message: string): never {
  process.stderr.write(`${message}\n${USAGE}\n`);
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

function commandLine() {
  try {
    return parseArgs({ allowPositionals: true, options: { role: { type: "string", default: "member" }, sub: { type: "string" } } });
  } catch (error) {
    fail(error instanceof Error ? error.message : String(error));
  }
}
const parsed = commandLine();
const [room, rawName, ttl, extra] = parsed.positionals;
const { role, sub } = parsed.values;
if (room === undefined || rawName === undefined || extra !== undefined) fail("a room and a name are required, and at most a lifetime after them");
if (room !== "*" && !isRoomName(room)) fail(`not a room name: ${room}`);
const name = checkDisplayName(rawName);
if (!name.ok) fail(name.message);
const ttlSeconds = ttl === undefined ? DEFAULT_TTL_SECONDS : Number(ttl);
if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds <= 0) fail("seconds must be a whole number, 1 or more");
if (role !== "member" && role !== "moderator") fail("--role must be member or moderator");
if (sub !== undefined && (sub === "" || sub.length > 255)) fail("--sub must be 1 to 255 characters");
const secret = process.env.ROOM_SECRET || secretFromDevVars();
if (!secret) fail("set ROOM_SECRET in the environment or in .dev.vars");

const exp = Math.floor(Date.now() / 1000) + ttlSeconds;
process.stdout.write(`${await signToken(secret, { room, name: name.name, exp, role, ...(sub !== undefined && { sub }) })}\n`);
