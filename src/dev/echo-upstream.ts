// The demo upstream: answers every request with the method, path and headers it received, so one
// can see what Envoy forwarded after ext_authz (identity headers in, Authorization out).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export function startEchoUpstream(host: string, port: number): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    // Drain the body (bounded by Envoy's request size limit) before answering.
    req.resume();
    req.on('end', () => {
      const body = JSON.stringify({ method: req.method, path: req.url, headers: req.headers }, null, 2);
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
  server.keepAliveTimeout = 65_000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve({ server, port: (server.address() as AddressInfo).port }));
  });
}

// Run directly: `node dist/src/dev/echo-upstream.js [port]`.
if (import.meta.url === `file://${process.argv[1]}`) {
  const port = Number(process.argv[2] ?? 9080);
  startEchoUpstream('127.0.0.1', port).then(
    ({ port: p }) => process.stderr.write(`echo upstream on 127.0.0.1:${p}\n`),
    (err: unknown) => {
      process.stderr.write(`echo upstream: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
