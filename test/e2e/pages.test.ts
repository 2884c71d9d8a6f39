import { expect, inject, it } from "vitest";

const base = inject("devUrl");

/** Every response on the way to a page, redirects included, so that none of them goes out without the headers. */
async function hops(path: string): Promise<Response[]> {
  const seen: Response[] = [];
  let url = new URL(path, base);
  for (;;) {
    const response = await fetch(url, { headers: { Accept: "text/html" }, redirect: "manual" });
    await response.body?.cancel();
    seen.push(response);
    const location = response.headers.get("Location");
    if (location === null || seen.length === 5) return seen;
    url = new URL(location, url);
  }
}

it.each(["/", "/rooms/lobby", "/room", "/room.html", "/index.html", "/room/"])(
  "serves %s, and everything on the way to it, with the pages' security headers",
  async (path) => {
    const responses = await hops(path);
    expect(responses.at(-1)!.status).toBe(200);
    expect(responses.at(-1)!.headers.get("Content-Type")).toMatch(/^text\/html/);
    for (const response of responses) {
      expect(response.headers.get("Content-Security-Policy"), response.url).toContain("default-src 'none'");
      expect(response.headers.get("Content-Security-Policy"), response.url).toContain("frame-ancestors 'none'");
      expect(response.headers.get("X-Content-Type-Options"), response.url).toBe("nosniff");
      expect(response.headers.get("Referrer-Policy"), response.url).toBe("same-origin");
    }
  },
);

it("still serves the other assets, and not the headers file itself", async () => {
  const style = await fetch(new URL("/style.css", base));
  expect(style.status).toBe(200);
  expect(style.headers.get("Content-Type")).toMatch(/^text\/css/);
  expect(await (await fetch(new URL("/_headers", base))).text()).not.toContain("Content-Security-Policy");
});
