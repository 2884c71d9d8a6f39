import { DurableObject } from "cloudflare:workers";

/**
 * Logs for two seconds after it has answered, as a room does when a socket
 * closes at the end of a test: the lines go on after the file has sent its
 * last report.
 */
export class Logger extends DurableObject {
  override async fetch(): Promise<Response> {
    this.ctx.waitUntil(
      (async () => {
        for (let line = 0; line < 1000; line++) {
          await scheduler.wait(2);
          console.log("a line logged after the answer", line);
        }
      })(),
    );
    return new Response("answered");
  }
}

export default { fetch: () => new Response("not found", { status: 404 }) };
