// What wrangler.toml's `main` exports: the Worker, and the Durable Object classes it routes to.
export { default } from "./worker/router";
export { Room } from "./room/room";
export { Shard } from "./shard/shard";
export { Account } from "./account/account";
