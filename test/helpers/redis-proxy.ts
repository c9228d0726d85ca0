// A TCP proxy in front of a Redis on loopback that can lose a reply: it closes the client's
// connection instead of passing on the next reply Redis sends (Redis ran the command; the client
// never hears).
import { connect, createServer, type Server, type Socket } from 'node:net';

export interface ReplyDroppingProxy {
  readonly port: number;
  /** Connections the proxy has accepted. */
  connections(): number;
  /** Close the connection instead of passing on the next reply Redis sends. */
  dropNextReply(): void;
  /** Stops listening and closes every connection. */
  close(): void;
}

export function replyDroppingProxy(redisPort: number): Promise<ReplyDroppingProxy> {
  let drop = false;
  let accepted = 0;
  const open = new Set<Socket>();
  const server: Server = createServer((client) => {
    accepted++;
    const upstream = connect(redisPort, '127.0.0.1');
    open.add(client).add(upstream);
    const both = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('data', (d) => upstream.write(d));
    upstream.on('data', (d) => {
      if (!drop) return void client.write(d);
      drop = false;
      both();
    });
    for (const s of [client, upstream]) s.on('error', both).on('close', () => (open.delete(s), both()));
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({
        port: (server.address() as { port: number }).port,
        connections: () => accepted,
        dropNextReply: () => void (drop = true),
        close: () => {
          server.close();
          for (const s of open) s.destroy();
        },
      }),
    ),
  );
}
