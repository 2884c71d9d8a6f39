import { createServer, type Server, type Socket, connect as tcpConnect } from "node:net";

/** What a TCP proxy to the dev server lets a test do to its connections, as a network would. */
export interface Proxy {
  port: number;
  /** Drops every connection, as a network that drops would. */
  cut(): void;
  /** Keeps what clients send from reaching the server, until `release()`; what the server sends still arrives. */
  hold(): void;
  release(): void;
  /** Cuts every connection and drops new ones at once, as a network that is gone; until `admit()`. */
  refuse(): void;
  admit(): void;
  connections(): number;
  close(): void;
}

export async function tcpProxy(port: string): Promise<Proxy> {
  const open = new Set<Socket>();
  let connections = 0;
  let refusing = false;
  let held: Array<() => void> | null = null;
  const proxy: Server = createServer((downstream) => {
    if (refusing) return void downstream.destroy();
    connections++;
    const upstream = tcpConnect(Number(port), "127.0.0.1");
    for (const socket of [downstream, upstream]) {
      open.add(socket);
      socket.on("close", () => open.delete(socket));
      socket.on("error", () => socket.destroy());
    }
    downstream.on("data", (chunk: Buffer) => {
      if (held === null) upstream.write(chunk);
      else held.push(() => upstream.write(chunk));
    });
    upstream.pipe(downstream);
    downstream.on("close", () => upstream.destroy());
    upstream.on("close", () => downstream.destroy());
  });
  await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  const cut = () => {
    for (const socket of open) socket.destroy();
  };
  return {
    port: (proxy.address() as { port: number }).port,
    cut,
    hold: () => {
      held ??= [];
    },
    release: () => {
      const writes = held ?? [];
      held = null;
      for (const write of writes) write();
    },
    refuse: () => {
      refusing = true;
      cut();
    },
    admit: () => {
      refusing = false;
    },
    connections: () => connections,
    close: () => {
      proxy.close();
      cut();
    },
  };
}
